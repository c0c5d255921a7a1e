/*
 * check_dashboard.c: the provisioned Grafana dashboards of the docker stack
 * (the .json files of docker/grafana/dashboards), read with jansson since
 * the repository uses no jq or Python.
 *
 * What Grafana would only show as a broken or empty panel at run time is
 * checked here: every file parses; the dashboard has a uid, a title and
 * panels with unique ids that fit the 24-column grid; every query panel has
 * a PromQL expression; every data source names the uid of the provisioned
 * Prometheus (docker/grafana/provisioning/datasources/prometheus.yml);
 * every $variable a query uses is defined; the dashboard covers what issue 6
 * asks for (lag, checkpoint, throughput, streams, regions, errors); and the
 * paths in the provisioning and in docker-compose.yml point at the files.
 * Whether the metric names exist is docs/metrics.md's business
 * (stack-check.sh metrics-doc).
 */
#include <check.h>
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit/check_main.h"
#include "../test_file.h"

#ifndef TKC_SOURCE_DIR
#error "TKC_SOURCE_DIR must be defined (tests/docker/CMakeLists.txt)"
#endif

#define DASH_DIR TKC_SOURCE_DIR "/docker/grafana/dashboards"
#define DATASOURCE_FILE TKC_SOURCE_DIR "/docker/grafana/provisioning/datasources/prometheus.yml"
#define PROVIDER_FILE TKC_SOURCE_DIR "/docker/grafana/provisioning/dashboards/tikv-kafka-cdc.yml"
#define COMPOSE_FILE TKC_SOURCE_DIR "/docker/docker-compose.yml"
#define GRID_COLUMNS 24

/* ------------------------------------------------------------ helpers */

/* The whole file as a NUL-terminated string (caller frees), or NULL. */
/*
 * The value after "key:" on the first line of YAML text that holds it, with
 * surrounding spaces and quotes removed, into out. False when absent. Enough
 * for the flat provisioning files; not a YAML parser.
 */
static bool yaml_scalar(const char *text, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *p = line;
        while (*p == ' ' || *p == '-')
            p++;
        if (strncmp(p, key, klen) != 0 || p[klen] != ':')
            continue;
        p += klen + 1;
        while (*p == ' ' || *p == '"' || *p == '\'')
            p++;
        size_t n = 0;
        while (p[n] && p[n] != '\n' && p[n] != '"' && p[n] != '\'' && p[n] != ' ' && p[n] != '#')
            n++;
        if (n + 1 > size)
            return false;
        memcpy(out, p, n);
        out[n] = '\0';
        return n > 0;
    }
    return false;
}

/* The provisioned Prometheus data source uid. */
static void datasource_uid(char *out, size_t size)
{
    char *text = tkc_test_read_file(DATASOURCE_FILE, NULL);
    ck_assert_msg(text != NULL, "cannot read %s", DATASOURCE_FILE);
    char type[64];
    ck_assert_msg(yaml_scalar(text, "type", type, sizeof(type)) && strcmp(type, "prometheus") == 0,
                  "%s: the data source is not of type prometheus", DATASOURCE_FILE);
    ck_assert_msg(yaml_scalar(text, "uid", out, size), "%s: the data source has no uid",
                  DATASOURCE_FILE);
    free(text);
}

typedef struct {
    char name[256];
    json_t *root;
} dash_t;

/* Every *.json of DASH_DIR, parsed; fails the test on a parse error. */
static size_t load_dashboards(dash_t *out, size_t max)
{
    DIR *d = opendir(DASH_DIR);
    ck_assert_msg(d != NULL, "cannot open %s", DASH_DIR);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0)
            continue;
        ck_assert_uint_lt(n, max);
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", DASH_DIR, e->d_name);
        json_error_t err;
        json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
        ck_assert_msg(root != NULL, "%s:%d:%d: %s", path, err.line, err.column, err.text);
        snprintf(out[n].name, sizeof(out[n].name), "%s", e->d_name);
        out[n].root = root;
        n++;
    }
    closedir(d);
    ck_assert_msg(n > 0, "no dashboard in %s", DASH_DIR);
    return n;
}

static void free_dashboards(dash_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(d[i].root);
}

/* Calls fn on every panel, rows' nested panels included. */
typedef void (*panel_fn)(const char *file, json_t *panel, void *opaque);

static void each_panel(const char *file, json_t *panels, panel_fn fn, void *opaque)
{
    size_t i;
    json_t *p;
    json_array_foreach(panels, i, p)
    {
        ck_assert_msg(json_is_object(p), "%s: panel %zu is not an object", file, i);
        fn(file, p, opaque);
        json_t *nested = json_object_get(p, "panels");
        if (json_is_array(nested))
            each_panel(file, nested, fn, opaque);
    }
}

/* Calls fn on every string value anywhere under v. */
static void each_string(json_t *v, void (*fn)(const char *s, void *opaque), void *opaque)
{
    if (json_is_string(v)) {
        fn(json_string_value(v), opaque);
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) each_string(x, fn, opaque);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) each_string(x, fn, opaque);
    }
}

/* -------------------------------------------------------------- tests */

START_TEST(test_dashboard_shape)
{
    dash_t d[16];
    size_t n = load_dashboards(d, 16);
    for (size_t i = 0; i < n; i++) {
        json_t *r = d[i].root;
        const char *f = d[i].name;
        ck_assert_msg(json_is_object(r), "%s: not a JSON object", f);
        const char *uid = json_string_value(json_object_get(r, "uid"));
        ck_assert_msg(uid && *uid && strlen(uid) <= 40, "%s: uid missing or over 40 chars", f);
        const char *title = json_string_value(json_object_get(r, "title"));
        ck_assert_msg(title && *title, "%s: no title", f);
        ck_assert_msg(json_is_integer(json_object_get(r, "schemaVersion")), "%s: no schemaVersion",
                      f);
        ck_assert_msg(json_is_array(json_object_get(r, "panels")) &&
                          json_array_size(json_object_get(r, "panels")) > 0,
                      "%s: no panels", f);
        /* Provisioned from a read-only mount: an "id" would clash in Grafana's database. */
        json_t *id = json_object_get(r, "id");
        ck_assert_msg(id == NULL || json_is_null(id), "%s: a provisioned dashboard has no id", f);
    }
    free_dashboards(d, n);
}
END_TEST

typedef struct {
    long long ids[512];
    size_t n_ids;
    size_t queries;
} panel_walk_t;

static void check_panel(const char *file, json_t *p, void *opaque)
{
    panel_walk_t *w = opaque;
    const char *type = json_string_value(json_object_get(p, "type"));
    const char *title = json_string_value(json_object_get(p, "title"));
    ck_assert_msg(type && *type, "%s: a panel without type", file);
    ck_assert_msg(title && *title, "%s: a %s panel without title", file, type);

    json_t *id = json_object_get(p, "id");
    ck_assert_msg(json_is_integer(id) && json_integer_value(id) > 0, "%s: panel \"%s\" has no id",
                  file, title);
    for (size_t i = 0; i < w->n_ids; i++)
        ck_assert_msg(w->ids[i] != json_integer_value(id), "%s: panel id %lld used twice (\"%s\")",
                      file, (long long)json_integer_value(id), title);
    ck_assert_uint_lt(w->n_ids, sizeof(w->ids) / sizeof(w->ids[0]));
    w->ids[w->n_ids++] = json_integer_value(id);

    json_t *g = json_object_get(p, "gridPos");
    ck_assert_msg(json_is_object(g), "%s: panel \"%s\" has no gridPos", file, title);
    json_int_t x = json_integer_value(json_object_get(g, "x"));
    json_int_t wd = json_integer_value(json_object_get(g, "w"));
    json_int_t h = json_integer_value(json_object_get(g, "h"));
    ck_assert_msg(x >= 0 && wd > 0 && h > 0 && x + wd <= GRID_COLUMNS,
                  "%s: panel \"%s\" does not fit the grid (x=%lld w=%lld h=%lld)", file, title,
                  (long long)x, (long long)wd, (long long)h);

    if (strcmp(type, "row") == 0 || strcmp(type, "text") == 0)
        return;
    json_t *targets = json_object_get(p, "targets");
    ck_assert_msg(json_is_array(targets) && json_array_size(targets) > 0,
                  "%s: panel \"%s\" has no query", file, title);
    size_t i;
    json_t *t;
    json_array_foreach(targets, i, t)
    {
        const char *expr = json_string_value(json_object_get(t, "expr"));
        ck_assert_msg(expr && *expr, "%s: panel \"%s\" query %zu has no expr", file, title, i);
        const char *ref = json_string_value(json_object_get(t, "refId"));
        ck_assert_msg(ref && *ref, "%s: panel \"%s\" query %zu has no refId", file, title, i);
        w->queries++;
    }
}

START_TEST(test_dashboard_panels)
{
    dash_t d[16];
    size_t n = load_dashboards(d, 16);
    for (size_t i = 0; i < n; i++) {
        panel_walk_t w = {.n_ids = 0, .queries = 0};
        each_panel(d[i].name, json_object_get(d[i].root, "panels"), check_panel, &w);
        ck_assert_msg(w.queries > 0, "%s: no queries at all", d[i].name);
    }
    free_dashboards(d, n);
}
END_TEST

/* Every "datasource" object anywhere names the provisioned uid (or Grafana's
 * built-in annotation source). */
static void check_datasources(const char *file, json_t *v, const char *uid)
{
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            if (strcmp(k, "datasource") == 0) {
                const char *u = json_is_object(x) ? json_string_value(json_object_get(x, "uid"))
                                                  : json_string_value(x);
                ck_assert_msg(u != NULL, "%s: a datasource without uid", file);
                ck_assert_msg(strcmp(u, uid) == 0 || strcmp(u, "-- Grafana --") == 0,
                              "%s: datasource uid \"%s\" is not the provisioned \"%s\" (%s)", file,
                              u, uid, DATASOURCE_FILE);
            } else {
                check_datasources(file, x, uid);
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) check_datasources(file, x, uid);
    }
}

START_TEST(test_dashboard_datasource)
{
    char uid[128];
    datasource_uid(uid, sizeof(uid));
    dash_t d[16];
    size_t n = load_dashboards(d, 16);
    for (size_t i = 0; i < n; i++)
        check_datasources(d[i].name, d[i].root, uid);
    free_dashboards(d, n);
}
END_TEST

typedef struct {
    const char *file;
    json_t *vars; /* templating.list */
} var_walk_t;

static void check_vars_in(const char *s, void *opaque)
{
    var_walk_t *w = opaque;
    for (const char *p = strchr(s, '$'); p; p = strchr(p + 1, '$')) {
        const char *q = p + 1;
        bool braces = *q == '{';
        if (braces)
            q++;
        size_t len = 0;
        while ((q[len] >= 'a' && q[len] <= 'z') || (q[len] >= 'A' && q[len] <= 'Z') ||
               (q[len] >= '0' && q[len] <= '9') || q[len] == '_')
            len++;
        if (len == 0 || strncmp(q, "__", 2) == 0)
            continue; /* "$" alone, or a Grafana built-in ($__rate_interval, $__all) */
        /* Legend "{{label}}" and annotation "$labels"/"$value" are not ours. */
        bool found = false;
        size_t i;
        json_t *v;
        json_array_foreach(w->vars, i, v)
        {
            const char *name = json_string_value(json_object_get(v, "name"));
            if (name && strlen(name) == len && strncmp(name, q, len) == 0)
                found = true;
        }
        ck_assert_msg(found, "%s: \"%s\" uses $%.*s, which templating does not define", w->file, s,
                      (int)len, q);
    }
}

START_TEST(test_dashboard_variables)
{
    dash_t d[16];
    size_t n = load_dashboards(d, 16);
    for (size_t i = 0; i < n; i++) {
        json_t *vars = json_object_get(json_object_get(d[i].root, "templating"), "list");
        json_t *empty = json_array();
        var_walk_t w = {.file = d[i].name, .vars = json_is_array(vars) ? vars : empty};
        each_string(json_object_get(d[i].root, "panels"), check_vars_in, &w);
        json_decref(empty);
    }
    free_dashboards(d, n);
}
END_TEST

/*
 * What issue 6 asks the dashboard to show, as the metric each needs. If a
 * metric is renamed, rename it here, in the dashboard and in the rules.
 */
static const struct {
    const char *what;
    const char *metric;
} required[] = {
    {"resolved-ts lag", "tikv_kafka_cdc_resolved_ts_lag_seconds"},
    {"checkpoint lag", "tikv_kafka_cdc_checkpoint_lag_seconds"},
    {"rows per topic", "tikv_kafka_cdc_rows_produced_total"},
    {"bytes per topic", "tikv_kafka_cdc_produced_bytes_total"},
    {"streams opened by store", "tikv_kafka_cdc_streams_opened_total"},
    {"streams retired by store", "tikv_kafka_cdc_streams_retired_total"},
    {"regions subscribed", "tikv_kafka_cdc_regions_subscribed"},
    {"regions initialized", "tikv_kafka_cdc_regions_initialized"},
    {"region errors by kind", "tikv_kafka_cdc_region_errors_total"},
    {"delivery errors", "tikv_kafka_cdc_delivery_errors_total"},
};

typedef struct {
    const char *metric;
    bool found;
} find_t;

static void find_metric(const char *s, void *opaque)
{
    find_t *f = opaque;
    size_t len = strlen(f->metric);
    for (const char *p = strstr(s, f->metric); p; p = strstr(p + 1, f->metric)) {
        char next = p[len];
        bool word_end = !((next >= 'a' && next <= 'z') || (next >= '0' && next <= '9') ||
                          next == '_' || next == ':');
        if (word_end)
            f->found = true;
    }
}

/* Only queries count: a metric named in a description shows nothing. */
static void find_in_targets(const char *file, json_t *p, void *opaque)
{
    (void)file;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(p, "targets"), i, t)
    {
        const char *expr = json_string_value(json_object_get(t, "expr"));
        if (expr)
            find_metric(expr, opaque);
    }
}

START_TEST(test_dashboard_covers_issue)
{
    dash_t d[16];
    size_t n = load_dashboards(d, 16);
    for (size_t r = 0; r < sizeof(required) / sizeof(required[0]); r++) {
        find_t f = {.metric = required[r].metric, .found = false};
        for (size_t i = 0; i < n; i++)
            each_panel(d[i].name, json_object_get(d[i].root, "panels"), find_in_targets, &f);
        ck_assert_msg(f.found, "no dashboard query shows %s (%s)", required[r].what,
                      required[r].metric);
    }
    free_dashboards(d, n);
}
END_TEST

START_TEST(test_provisioning_paths)
{
    /* The provider reads the directory that docker-compose.yml mounts the
     * dashboards on, and the home dashboard is one of the files. */
    char *prov = tkc_test_read_file(PROVIDER_FILE, NULL);
    ck_assert_msg(prov != NULL, "cannot read %s", PROVIDER_FILE);
    char dir[256];
    ck_assert_msg(yaml_scalar(prov, "path", dir, sizeof(dir)), "%s: no options.path",
                  PROVIDER_FILE);
    free(prov);

    char *compose = tkc_test_read_file(COMPOSE_FILE, NULL);
    ck_assert_msg(compose != NULL, "cannot read %s", COMPOSE_FILE);
    char mount[300];
    snprintf(mount, sizeof(mount), "./grafana/dashboards:%s:ro", dir);
    ck_assert_msg(strstr(compose, mount) != NULL, "%s: no volume %s (the provider reads %s)",
                  COMPOSE_FILE, mount, dir);
    ck_assert_msg(strstr(compose, "./grafana/provisioning:/etc/grafana/provisioning") != NULL,
                  "%s: the provisioning directory is not mounted", COMPOSE_FILE);

    char home[512];
    ck_assert_msg(yaml_scalar(compose, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", home,
                              sizeof(home)),
                  "%s: no GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", COMPOSE_FILE);
    size_t dlen = strlen(dir);
    ck_assert_msg(strncmp(home, dir, dlen) == 0 && home[dlen] == '/',
                  "home dashboard %s is not under %s", home, dir);
    char local[1024];
    snprintf(local, sizeof(local), "%s/%s", DASH_DIR, home + dlen + 1);
    FILE *f = fopen(local, "r");
    ck_assert_msg(f != NULL, "home dashboard %s: no file %s", home, local);
    fclose(f);
    free(compose);
}
END_TEST

static Suite *dashboard_suite(void)
{
    Suite *s = suite_create("docker_dashboard");
    TCase *tc = tcase_create("dashboard");
    tcase_add_test(tc, test_dashboard_shape);
    tcase_add_test(tc, test_dashboard_panels);
    tcase_add_test(tc, test_dashboard_datasource);
    tcase_add_test(tc, test_dashboard_variables);
    tcase_add_test(tc, test_dashboard_covers_issue);
    tcase_add_test(tc, test_provisioning_paths);
    suite_add_tcase(s, tc);
    return s;
}

TKC_CHECK_MAIN(dashboard_suite)
