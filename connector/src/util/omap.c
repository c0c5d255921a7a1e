/*
 * omap.c: AVL tree keyed by byte strings, augmented with subtree minimum
 * weights (see omap.h).
 *
 * Why an AVL tree: the range lock and the frontier need ordered neighbours
 * (floor/next), cheap range minimums and stable node handles. A balanced
 * binary tree with parent pointers gives all three directly; the height
 * bound (1.44 log2 n) keeps the worst case close to the average, which
 * matters more to us than the last few percent of average speed.
 *
 * Invariants, checked by tkc_omap_check():
 *   - in-order traversal is strictly increasing by key;
 *   - |height(left) - height(right)| <= 1 at every node;
 *   - submin(n) = min(weight(n), submin(left), submin(right)).
 * Every structural change walks from the changed node to the root, refreshing
 * height and submin, so both stay exact after each public call.
 *
 * Removal relinks nodes instead of copying the successor's key into the
 * victim: node handles held by callers must never change identity.
 */
#include "util/omap.h"

#include <stdlib.h>
#include <string.h>

#include "util/keyrange.h"
#include "util/mem.h"

struct tkc_omap_node_s {
    struct tkc_omap_node_s *left, *right, *parent;
    void *val;
    uint64_t weight;
    uint64_t submin;
    int32_t height;
    uint32_t klen; /* with height, 8 bytes: a node header of 56, not 64 */
    uint8_t key[];
};

struct tkc_omap_s {
    tkc_omap_node_t *root;
    size_t count;
    size_t key_bytes;
};

static inline int height(const tkc_omap_node_t *n)
{
    return n ? n->height : 0;
}

static inline uint64_t submin(const tkc_omap_node_t *n)
{
    return n ? n->submin : UINT64_MAX;
}

static inline uint64_t min3(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t m = a < b ? a : b;
    return m < c ? m : c;
}

static void refresh(tkc_omap_node_t *n)
{
    int hl = height(n->left), hr = height(n->right);
    n->height = (hl > hr ? hl : hr) + 1;
    n->submin = min3(n->weight, submin(n->left), submin(n->right));
}

static inline int node_cmp(const tkc_omap_node_t *n, const uint8_t *key, size_t klen)
{
    return tkc_key_cmp(n->key, n->klen, key, klen);
}

tkc_omap_t *tkc_omap_new(void)
{
    return tkc_calloc(1, sizeof(tkc_omap_t));
}

void tkc_omap_destroy(tkc_omap_t *m, tkc_omap_free_cb *val_free)
{
    if (!m)
        return;
    /* iterative post-order free without recursion or extra memory */
    tkc_omap_node_t *n = m->root;
    while (n) {
        if (n->left) {
            n = n->left;
        } else if (n->right) {
            n = n->right;
        } else {
            tkc_omap_node_t *p = n->parent;
            if (p) {
                if (p->left == n)
                    p->left = NULL;
                else
                    p->right = NULL;
            }
            if (val_free)
                val_free(n->val);
            tkc_free(n);
            n = p;
        }
    }
    tkc_free(m);
}

size_t tkc_omap_count(const tkc_omap_t *m)
{
    return m->count;
}

static void replace_child(tkc_omap_t *m, tkc_omap_node_t *parent, tkc_omap_node_t *old,
                          tkc_omap_node_t *new_)
{
    if (!parent)
        m->root = new_;
    else if (parent->left == old)
        parent->left = new_;
    else
        parent->right = new_;
    if (new_)
        new_->parent = parent;
}

static tkc_omap_node_t *rotate_left(tkc_omap_t *m, tkc_omap_node_t *x)
{
    tkc_omap_node_t *y = x->right;
    x->right = y->left;
    if (y->left)
        y->left->parent = x;
    replace_child(m, x->parent, x, y);
    y->left = x;
    x->parent = y;
    refresh(x);
    refresh(y);
    return y;
}

static tkc_omap_node_t *rotate_right(tkc_omap_t *m, tkc_omap_node_t *x)
{
    tkc_omap_node_t *y = x->left;
    x->left = y->right;
    if (y->right)
        y->right->parent = x;
    replace_child(m, x->parent, x, y);
    y->right = x;
    x->parent = y;
    refresh(x);
    refresh(y);
    return y;
}

/* Restores balance, heights and submins from @p n up to the root. */
static void rebalance_up(tkc_omap_t *m, tkc_omap_node_t *n)
{
    while (n) {
        refresh(n);
        int bf = height(n->left) - height(n->right);
        if (bf > 1) {
            if (height(n->left->left) < height(n->left->right))
                rotate_left(m, n->left);
            n = rotate_right(m, n);
        } else if (bf < -1) {
            if (height(n->right->right) < height(n->right->left))
                rotate_right(m, n->right);
            n = rotate_left(m, n);
        }
        n = n->parent;
    }
}

tkc_omap_node_t *tkc_omap_insert(tkc_omap_t *m, const uint8_t *key, size_t klen, void *val,
                                 uint64_t weight, bool *existed)
{
    tkc_omap_node_t *parent = NULL, **link = &m->root;
    while (*link) {
        parent = *link;
        int c = node_cmp(parent, key, klen);
        if (c == 0) {
            if (existed)
                *existed = true;
            return parent;
        }
        link = c > 0 ? &parent->left : &parent->right;
    }
    if (klen > UINT32_MAX)
        abort(); /* a 4 GiB key is a bug of the caller */
    tkc_omap_node_t *n = tkc_malloc(sizeof(*n) + klen);
    n->left = n->right = NULL;
    n->parent = parent;
    n->val = val;
    n->weight = n->submin = weight;
    n->height = 1;
    n->klen = (uint32_t)klen;
    if (klen)
        memcpy(n->key, key, klen);
    *link = n;
    m->count++;
    m->key_bytes += klen;
    if (existed)
        *existed = false;
    rebalance_up(m, parent);
    return n;
}

void *tkc_omap_remove(tkc_omap_t *m, tkc_omap_node_t *z)
{
    tkc_omap_node_t *fix;
    if (z->left && z->right) {
        /* splice the successor y out of its place and put it where z was */
        tkc_omap_node_t *y = z->right;
        while (y->left)
            y = y->left;
        if (y->parent != z) {
            fix = y->parent;
            replace_child(m, y->parent, y, y->right);
            y->right = z->right;
            y->right->parent = y;
        } else {
            fix = y;
        }
        y->left = z->left;
        y->left->parent = y;
        replace_child(m, z->parent, z, y);
    } else {
        fix = z->parent;
        replace_child(m, z->parent, z, z->left ? z->left : z->right);
    }
    void *val = z->val;
    m->count--;
    m->key_bytes -= z->klen;
    tkc_free(z);
    rebalance_up(m, fix);
    return val;
}

tkc_omap_node_t *tkc_omap_find(const tkc_omap_t *m, const uint8_t *key, size_t klen)
{
    tkc_omap_node_t *n = m->root;
    while (n) {
        int c = node_cmp(n, key, klen);
        if (c == 0)
            return n;
        n = c > 0 ? n->left : n->right;
    }
    return NULL;
}

tkc_omap_node_t *tkc_omap_floor(const tkc_omap_t *m, const uint8_t *key, size_t klen)
{
    tkc_omap_node_t *n = m->root, *best = NULL;
    while (n) {
        int c = node_cmp(n, key, klen);
        if (c == 0)
            return n;
        if (c < 0) {
            best = n;
            n = n->right;
        } else {
            n = n->left;
        }
    }
    return best;
}

tkc_omap_node_t *tkc_omap_ceil(const tkc_omap_t *m, const uint8_t *key, size_t klen)
{
    tkc_omap_node_t *n = m->root, *best = NULL;
    while (n) {
        int c = node_cmp(n, key, klen);
        if (c == 0)
            return n;
        if (c > 0) {
            best = n;
            n = n->left;
        } else {
            n = n->right;
        }
    }
    return best;
}

tkc_omap_node_t *tkc_omap_first(const tkc_omap_t *m)
{
    tkc_omap_node_t *n = m->root;
    while (n && n->left)
        n = n->left;
    return n;
}

tkc_omap_node_t *tkc_omap_last(const tkc_omap_t *m)
{
    tkc_omap_node_t *n = m->root;
    while (n && n->right)
        n = n->right;
    return n;
}

tkc_omap_node_t *tkc_omap_next(const tkc_omap_node_t *n)
{
    if (n->right) {
        n = n->right;
        while (n->left)
            n = n->left;
        return (tkc_omap_node_t *)n;
    }
    while (n->parent && n->parent->right == n)
        n = n->parent;
    return n->parent;
}

tkc_omap_node_t *tkc_omap_prev(const tkc_omap_node_t *n)
{
    if (n->left) {
        n = n->left;
        while (n->right)
            n = n->right;
        return (tkc_omap_node_t *)n;
    }
    while (n->parent && n->parent->left == n)
        n = n->parent;
    return n->parent;
}

const uint8_t *tkc_omap_key(const tkc_omap_node_t *n, size_t *klen)
{
    if (klen)
        *klen = n->klen;
    return n->key;
}

void *tkc_omap_value(const tkc_omap_node_t *n)
{
    return n->val;
}

void tkc_omap_set_value(tkc_omap_node_t *n, void *val)
{
    n->val = val;
}

uint64_t tkc_omap_weight(const tkc_omap_node_t *n)
{
    return n->weight;
}

void tkc_omap_set_weight(tkc_omap_t *m, tkc_omap_node_t *n, uint64_t weight)
{
    (void)m;
    n->weight = weight;
    /* only submins change; ancestors depend on n only through its submin,
     * so the walk stops at the first node whose submin stays the same */
    for (; n; n = n->parent) {
        uint64_t s = min3(n->weight, submin(n->left), submin(n->right));
        if (s == n->submin)
            break;
        n->submin = s;
    }
}

uint64_t tkc_omap_min_weight(const tkc_omap_t *m)
{
    return submin(m->root);
}

tkc_omap_node_t *tkc_omap_min_weight_node(const tkc_omap_t *m)
{
    tkc_omap_node_t *n = m->root;
    while (n) {
        if (n->left && n->left->submin == n->submin)
            n = n->left;
        else if (n->weight == n->submin)
            return n;
        else
            n = n->right;
    }
    return NULL;
}

/*
 * Minimum over keys in [lo, hi). lo_open / hi_open mean "no bound on that
 * side". Once the search splits, each side is one path whose other-side
 * subtrees are taken whole through their submin, hence O(log n).
 */
static uint64_t range_min(const tkc_omap_node_t *n, const uint8_t *lo, size_t lolen, bool lo_open,
                          const uint8_t *hi, size_t hilen, bool hi_open)
{
    uint64_t best = UINT64_MAX;
    while (n) {
        if (lo_open && hi_open)
            return best < n->submin ? best : n->submin;
        if (!lo_open && node_cmp(n, lo, lolen) < 0) {
            n = n->right;
            continue;
        }
        if (!hi_open && node_cmp(n, hi, hilen) >= 0) {
            n = n->left;
            continue;
        }
        /* n is inside the range: its left subtree is < hi, right is >= lo */
        if (n->weight < best)
            best = n->weight;
        uint64_t l = range_min(n->left, lo, lolen, lo_open, NULL, 0, true);
        uint64_t r = range_min(n->right, NULL, 0, true, hi, hilen, hi_open);
        return min3(best, l, r);
    }
    return best;
}

uint64_t tkc_omap_range_min(const tkc_omap_t *m, const uint8_t *lo, size_t lolen,
                            const uint8_t *hi, size_t hilen)
{
    return range_min(m->root, lo, lolen, lolen == 0, hi, hilen, hilen == 0);
}

size_t tkc_omap_bytes(const tkc_omap_t *m)
{
    return sizeof(*m) + m->count * sizeof(tkc_omap_node_t) + m->key_bytes;
}

static bool check_node(const tkc_omap_node_t *n, const tkc_omap_node_t *parent, size_t *count)
{
    if (!n)
        return true;
    if (n->parent != parent)
        return false;
    if (n->left && node_cmp(n->left, n->key, n->klen) >= 0)
        return false;
    if (n->right && node_cmp(n->right, n->key, n->klen) <= 0)
        return false;
    if (!check_node(n->left, n, count) || !check_node(n->right, n, count))
        return false;
    int hl = height(n->left), hr = height(n->right);
    if (hl - hr > 1 || hr - hl > 1)
        return false;
    if (n->height != (hl > hr ? hl : hr) + 1)
        return false;
    if (n->submin != min3(n->weight, submin(n->left), submin(n->right)))
        return false;
    (*count)++;
    return true;
}

bool tkc_omap_check(const tkc_omap_t *m)
{
    size_t count = 0;
    if (!check_node(m->root, NULL, &count) || count != m->count)
        return false;
    /* the local child checks above do not prove global order; walk it */
    const tkc_omap_node_t *prev = NULL;
    for (const tkc_omap_node_t *n = tkc_omap_first(m); n; n = tkc_omap_next(n)) {
        if (prev && node_cmp(prev, n->key, n->klen) >= 0)
            return false;
        prev = n;
    }
    return true;
}
