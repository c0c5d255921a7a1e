/*
 * metrics.c: families of atomically updated series, and their Prometheus
 * text rendering.
 *
 * Layout: the registry holds its families in registration order, each
 * family its series in creation order, both as singly linked lists that
 * only grow (under the registry mutex). A series' value is one atomic
 * int64, so the measured code never takes a lock; the mutex only guards
 * the lists, which change at start-up and when a new label set appears
 * (a new store, a new error kind).
 *
 * Rendering order is stable (registration, then creation order), which
 * keeps scrapes diffable and the tests simple. Label values and HELP text
 * are escaped as the exposition format requires (backslash, double quote
 * and newline in label values; backslash and newline in HELP).
 */
#include "metrics.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/mem.h"

struct tkc_metric_series_s {
    struct tkc_metric_series_s *next;
    char *values[TKC_METRICS_MAX_LABELS];
    atomic_llong value;
    atomic_bool hidden;
};

struct tkc_metric_s {
    struct tkc_metric_s *next;
    tkc_metrics_t *m;
    tkc_metric_type_t type;
    char *name;
    char *help;
    char *labels[TKC_METRICS_MAX_LABELS];
    int n_labels;
    int scale;
    tkc_metric_series_t *series, *series_tail;
};

typedef struct collector_s {
    struct collector_s *next;
    tkc_metrics_collect_cb *cb;
    void *opaque;
} collector_t;

struct tkc_metrics_s {
    pthread_mutex_t lock;        /* the lists */
    pthread_mutex_t render_lock; /* one render at a time (collectors are not reentrant) */
    tkc_metric_t *families, *families_tail;
    collector_t *collectors, *collectors_tail;
};

tkc_metrics_t *tkc_metrics_new(void)
{
    tkc_metrics_t *m = tkc_calloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->render_lock, NULL);
    return m;
}

void tkc_metrics_destroy(tkc_metrics_t *m)
{
    if (!m)
        return;
    for (tkc_metric_t *f = m->families, *fn; f; f = fn) {
        fn = f->next;
        for (tkc_metric_series_t *s = f->series, *sn; s; s = sn) {
            sn = s->next;
            for (int i = 0; i < f->n_labels; i++)
                tkc_free(s->values[i]);
            tkc_free(s);
        }
        for (int i = 0; i < f->n_labels; i++)
            tkc_free(f->labels[i]);
        tkc_free(f->name);
        tkc_free(f->help);
        tkc_free(f);
    }
    for (collector_t *c = m->collectors, *cn; c; c = cn) {
        cn = c->next;
        tkc_free(c);
    }
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->render_lock);
    tkc_free(m);
}

static bool valid_name(const char *s, bool colon_ok)
{
    if (!s || !(isalpha((unsigned char)*s) || *s == '_' || (colon_ok && *s == ':')))
        return false;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || (colon_ok && *s == ':')))
            return false;
    return true;
}

tkc_metric_t *tkc_metrics_register(tkc_metrics_t *m, tkc_metric_type_t type, const char *name,
                                   const char *help, const char *labels, int scale)
{
    if (!valid_name(name, true) || scale < 0 || scale > 9 ||
        (type != TKC_METRIC_COUNTER && type != TKC_METRIC_GAUGE))
        return NULL;
    char *lab[TKC_METRICS_MAX_LABELS] = {0};
    int n = 0;
    if (labels && *labels) {
        const char *p = labels;
        for (;;) {
            size_t len = strcspn(p, ",");
            if (n == TKC_METRICS_MAX_LABELS)
                goto bad;
            lab[n] = tkc_strndup(p, len);
            /* Names starting with "__" are reserved by Prometheus. */
            if (!valid_name(lab[n], false) || strncmp(lab[n], "__", 2) == 0) {
                n++;
                goto bad;
            }
            n++;
            if (!p[len])
                break;
            p += len + 1;
        }
    }
    pthread_mutex_lock(&m->lock);
    for (tkc_metric_t *f = m->families; f; f = f->next) {
        if (strcmp(f->name, name) != 0)
            continue;
        bool same = f->type == type && f->n_labels == n && f->scale == scale;
        for (int i = 0; same && i < n; i++)
            same = strcmp(f->labels[i], lab[i]) == 0;
        pthread_mutex_unlock(&m->lock);
        for (int i = 0; i < n; i++)
            tkc_free(lab[i]);
        return same ? f : NULL;
    }
    tkc_metric_t *f = tkc_calloc(1, sizeof(*f));
    f->m = m;
    f->type = type;
    f->name = tkc_strdup(name);
    f->help = tkc_strdup(help ? help : "");
    memcpy(f->labels, lab, sizeof(lab));
    f->n_labels = n;
    f->scale = scale;
    if (m->families_tail)
        m->families_tail->next = f;
    else
        m->families = f;
    m->families_tail = f;
    pthread_mutex_unlock(&m->lock);
    return f;
bad:
    for (int i = 0; i < n; i++)
        tkc_free(lab[i]);
    return NULL;
}

tkc_metric_series_t *tkc_metric_get(tkc_metric_t *fam, const char *const *values)
{
    tkc_metrics_t *m = fam->m;
    pthread_mutex_lock(&m->lock);
    tkc_metric_series_t *s;
    for (s = fam->series; s; s = s->next) {
        int i = 0;
        while (i < fam->n_labels && strcmp(s->values[i], values[i] ? values[i] : "") == 0)
            i++;
        if (i == fam->n_labels)
            break;
    }
    if (!s) {
        s = tkc_calloc(1, sizeof(*s));
        for (int i = 0; i < fam->n_labels; i++)
            s->values[i] = tkc_strdup(values[i] ? values[i] : "");
        atomic_init(&s->value, 0);
        atomic_init(&s->hidden, false);
        if (fam->series_tail)
            fam->series_tail->next = s;
        else
            fam->series = s;
        fam->series_tail = s;
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

static inline void unhide(tkc_metric_series_t *s)
{
    if (atomic_load_explicit(&s->hidden, memory_order_relaxed))
        atomic_store_explicit(&s->hidden, false, memory_order_relaxed);
}

void tkc_metric_add(tkc_metric_series_t *s, int64_t n)
{
    atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
    unhide(s);
}

void tkc_metric_set(tkc_metric_series_t *s, int64_t v)
{
    atomic_store_explicit(&s->value, v, memory_order_relaxed);
    unhide(s);
}

int64_t tkc_metric_value(const tkc_metric_series_t *s)
{
    return atomic_load_explicit(&((tkc_metric_series_t *)s)->value, memory_order_relaxed);
}

void tkc_metric_hide_all(tkc_metric_t *fam)
{
    pthread_mutex_lock(&fam->m->lock);
    for (tkc_metric_series_t *s = fam->series; s; s = s->next)
        atomic_store_explicit(&s->hidden, true, memory_order_relaxed);
    pthread_mutex_unlock(&fam->m->lock);
}

void tkc_metrics_add_collector(tkc_metrics_t *m, tkc_metrics_collect_cb *cb, void *opaque)
{
    collector_t *c = tkc_calloc(1, sizeof(*c));
    c->cb = cb;
    c->opaque = opaque;
    pthread_mutex_lock(&m->lock);
    if (m->collectors_tail)
        m->collectors_tail->next = c;
    else
        m->collectors = c;
    m->collectors_tail = c;
    pthread_mutex_unlock(&m->lock);
}

/* ===== rendering ===== */

typedef struct {
    char *buf;
    size_t len, cap;
} out_t;

static void out_reserve(out_t *o, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->buf = tkc_realloc(o->buf, o->cap);
    }
}

static void out_str(out_t *o, const char *s, size_t n)
{
    out_reserve(o, n);
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void out_cstr(out_t *o, const char *s)
{
    out_str(o, s, strlen(s));
}

/* Label values escape \ " and newline; HELP escapes \ and newline. */
static void out_escaped(out_t *o, const char *s, bool quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            out_str(o, "\\\\", 2);
        else if (*s == '\n')
            out_str(o, "\\n", 2);
        else if (quote && *s == '"')
            out_str(o, "\\\"", 2);
        else
            out_str(o, s, 1);
    }
}

static void out_value(out_t *o, int64_t v, int scale)
{
    char buf[48];
    if (scale == 0) {
        snprintf(buf, sizeof(buf), "%lld", (long long)v);
    } else {
        int64_t div = 1;
        for (int i = 0; i < scale; i++)
            div *= 10;
        /* Split without negating v (INT64_MIN has no positive twin). */
        long long ip = (long long)(v / div);
        long long fp = (long long)(v % div);
        if (fp < 0)
            fp = -fp;
        int w = snprintf(buf, sizeof(buf), "%s%lld.%0*lld", (v < 0 && ip == 0) ? "-" : "", ip,
                         scale, fp);
        /* Trim trailing zeros, and the dot if nothing is left after it. */
        while (w > 0 && buf[w - 1] == '0')
            buf[--w] = '\0';
        if (w > 0 && buf[w - 1] == '.')
            buf[--w] = '\0';
    }
    out_cstr(o, buf);
}

char *tkc_metrics_render(tkc_metrics_t *m, size_t *len)
{
    pthread_mutex_lock(&m->render_lock);
    /* Collectors take m->lock themselves (registering, looking up). */
    pthread_mutex_lock(&m->lock);
    size_t nc = 0;
    for (collector_t *c = m->collectors; c; c = c->next)
        nc++;
    collector_t *cs = tkc_malloc((nc ? nc : 1) * sizeof(*cs));
    nc = 0;
    for (collector_t *c = m->collectors; c; c = c->next)
        cs[nc++] = *c;
    pthread_mutex_unlock(&m->lock);
    for (size_t i = 0; i < nc; i++)
        cs[i].cb(cs[i].opaque, m);
    tkc_free(cs);

    out_t o = {0};
    out_reserve(&o, 4096);
    o.buf[0] = '\0';
    pthread_mutex_lock(&m->lock);
    for (tkc_metric_t *f = m->families; f; f = f->next) {
        bool any = false;
        for (tkc_metric_series_t *s = f->series; s && !any; s = s->next)
            any = !atomic_load_explicit(&s->hidden, memory_order_relaxed);
        if (!any)
            continue;
        out_cstr(&o, "# HELP ");
        out_cstr(&o, f->name);
        out_cstr(&o, " ");
        out_escaped(&o, f->help, false);
        out_cstr(&o, "\n# TYPE ");
        out_cstr(&o, f->name);
        out_cstr(&o, f->type == TKC_METRIC_COUNTER ? " counter\n" : " gauge\n");
        for (tkc_metric_series_t *s = f->series; s; s = s->next) {
            if (atomic_load_explicit(&s->hidden, memory_order_relaxed))
                continue;
            out_cstr(&o, f->name);
            if (f->n_labels) {
                out_cstr(&o, "{");
                for (int i = 0; i < f->n_labels; i++) {
                    if (i)
                        out_cstr(&o, ",");
                    out_cstr(&o, f->labels[i]);
                    out_cstr(&o, "=\"");
                    out_escaped(&o, s->values[i], true);
                    out_cstr(&o, "\"");
                }
                out_cstr(&o, "}");
            }
            out_cstr(&o, " ");
            out_value(&o, tkc_metric_value(s), f->scale);
            out_cstr(&o, "\n");
        }
    }
    pthread_mutex_unlock(&m->lock);
    pthread_mutex_unlock(&m->render_lock);
    if (len)
        *len = o.len;
    return o.buf;
}
