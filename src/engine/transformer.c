/* transformer.c - see transformer.h.  gpt2_transformer_forward is the spine;
 * the jobs below it are what the thread pool runs. */
#include "transformer.h"

#include "fileio.h"

#include <assert.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/* LayerNorm rows (and key/value rows stored) per chunk: fewer run on the
 * calling thread alone, as handing them to the pool would cost more than
 * it saves. */
#define SERIAL_ROWS 8

/* Faults in the pages of p[0..n) writable in one call: a fresh anonymous
 * page costs a fault on its first write, and the kernel's own populate
 * is several times cheaper than a fault per page.  Then touches each
 * page, which a virtual machine's hypervisor may still charge for (on the
 * VMs this was measured on, about 10 us a page on its first access: a
 * first pass's writes paid 5 ms for them).  A no-op where the kernel has
 * no populate (reading a fresh page there would map the zero page, and
 * the first write then fault again). */
static void populate_write(void *p, size_t n) {
#ifdef MADV_POPULATE_WRITE
    const uintptr_t page = 4096, begin = (uintptr_t)p / page * page;
    const uintptr_t end = ((uintptr_t)p + n + page - 1) / page * page;
    if (madvise((void *)begin, end - begin, MADV_POPULATE_WRITE) == 0) gpt2_fileio_touch(p, n);
#else
    (void)p, (void)n;
#endif
}

/* a * b * c * d, setting *overflow when it does not fit a size_t (a
 * 32-bit one among them). */
static size_t product(bool *overflow, size_t a, size_t b, size_t c, size_t d) {
    size_t f[3] = {b, c, d}, x = a;
    for (int i = 0; i < 3; i++) {
        if (f[i] && x > SIZE_MAX / f[i]) *overflow = true;
        x *= f[i];
    }
    return x;
}

/* What this process can have: the machine's memory, or less under a
 * ulimit -v.  0 when unknown. */
static double memory_limit(const char **what) {
    double limit = 0;
    *what = "this machine has";
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) limit = (double)pages * (double)page;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (limit == 0 || (double)rl.rlim_cur < limit)) {
        limit = (double)rl.rlim_cur;
        *what = "this process may use under ulimit -v";
    }
    return limit;
}

#define GIB (1024.0 * 1024.0 * 1024.0)

/* Refuses, before anything is reserved, a key/value cache whose size
 * overflows or that is more than the memory there is. */
static bool check_cache_size(const ModelConfig *c, size_t n_seq, size_t n_kv, char *err, size_t errsz) {
    bool overflow = false;
    size_t per_seq = product(&overflow, c->n_layer, 2 * n_kv, c->n_embd, sizeof(float));
    size_t all = product(&overflow, per_seq, n_seq, 1, 1);
    double need = (double)c->n_layer * (double)(2 * n_kv) * c->n_embd * sizeof(float);
    if (overflow) {
        snprintf(err, errsz,
                 "this model needs %.1f GiB of key/value cache per sequence, more than this machine can address",
                 need / GIB);
        return false;
    }
    const char *what;
    double limit = memory_limit(&what);
    if (limit > 0 && (double)per_seq > limit) {
        snprintf(err, errsz, "this model needs %.1f GiB of key/value cache per sequence, more than %s (%.1f GiB)",
                 (double)per_seq / GIB, what, limit / GIB);
        return false;
    }
    if (limit > 0 && (double)all > limit) {
        snprintf(err, errsz,
                 "%zu sequences need %.1f GiB of key/value cache, more than %s (%.1f GiB); run fewer at a time", n_seq,
                 (double)all / GIB, what, limit / GIB);
        return false;
    }
    return true;
}

/* Whether a product of m may widen its weights into RunState.widened
 * (kernels.h): 16-bit ones from widen_rows rows on, q8_0 ones at any
 * number of rows where the kernel set asks for it. */
static bool widens(const Matrix *m, const KernelSet *kernels, size_t max_rows) {
    if (m->dtype == DTYPE_F16 || m->dtype == DTYPE_BF16) return max_rows >= kernels->widen_rows;
    return m->dtype == DTYPE_Q8_0 && kernels->q8_scratch;
}

static bool wants_widened(const Model *model, const KernelSet *kernels, size_t max_rows) {
    const TransformerWeights *w = &model->weights;
    bool found = widens(&w->wte, kernels, max_rows);
    for (uint32_t l = 0; l < model->config.n_layer; l++) {
        const LayerWeights *ly = &w->layers[l];
        const Matrix *m[] = {&ly->qkv, &ly->proj, &ly->fc, &ly->mlp};
        for (size_t i = 0; i < sizeof m / sizeof *m; i++) found |= widens(m[i], kernels, max_rows);
    }
    return found;
}

bool gpt2_transformer_build(Transformer *t, const Model *model, const KernelSet *kernels, size_t n_seq, size_t max_rows,
                            int n_threads, char *err, size_t errsz) {
    memset(t, 0, sizeof *t);
    const ModelConfig *c = &model->config;
    const size_t C = c->n_embd;
    if (!check_cache_size(c, n_seq, ((size_t)c->n_ctx + 15) / 16 * 16, err, errsz)) return false;
    t->model = model;
    t->kernels = kernels;
    gpt2_kernels_stream_hints(NULL, &t->stream);
    t->n_seq = n_seq;
    t->max_rows = max_rows;
    t->n_ctx16 = ((size_t)c->n_ctx + 15) / 16 * 16;
    t->head_dim = C / c->n_head;
    t->n_slices = (size_t)c->n_layer * c->n_head;
    t->kv_size = t->n_ctx16 * c->n_layer * C;
    t->pool = gpt2_threadpool_create(n_threads);
    t->caches = calloc(n_seq, sizeof *t->caches);
    RunState *s = &t->state;
    const size_t threads = t->pool ? (size_t)gpt2_threadpool_size(t->pool) : 1;
    /* Every size checked for overflow (a 32-bit size_t is small): one
     * that overflows is refused below instead of allocating a wrapped one. */
    bool ovf = false;
    const size_t f = sizeof(float);
    s->x = malloc(product(&ovf, max_rows, C, f, 1));
    s->xn = malloc(product(&ovf, max_rows, C, f, 1));
    s->qkv = malloc(product(&ovf, max_rows, 3 * C, f, 1));
    s->att = malloc(product(&ovf, max_rows, C, f, 1));
    s->fc = malloc(product(&ovf, max_rows, 4 * C, f, 1));
    s->scores = malloc(product(&ovf, threads, kernels->attention_queries, t->n_ctx16, f));
    s->xt = malloc(product(&ovf, kernels->wide_rows, 4 * C, f, 1));
    s->xq = malloc(product(&ovf, max_rows, Q8_TERMS * 4 * C, 1, 1));
    s->xd = malloc(product(&ovf, max_rows, 4 * C / Q8_BLOCK + 1, f, 1));
    if (wants_widened(model, kernels, max_rows)) {
        s->widened_cols = 4 * C;
        s->widened = malloc(product(&ovf, threads, kernels->widen_panels * PANEL_ROWS, s->widened_cols, f));
    }
    s->logits = malloc(product(&ovf, n_seq, c->n_vocab, f, 1));
    s->group_row = malloc(product(&ovf, max_rows, sizeof *s->group_row, 1, 1));
    s->group_len = malloc(product(&ovf, max_rows, sizeof *s->group_len, 1, 1));
    bool ok = !ovf && t->pool && t->caches && s->x && s->xn && s->qkv && s->att && s->fc && s->scores && s->xt &&
              s->xq && s->xd && s->logits && s->group_row && s->group_len && (s->widened || !s->widened_cols);
    /* check_cache_size checked these products.  The caches are zeroed (the
     * unused lanes of a key block are read) and left untouched until their
     * positions are brought in (populate_cache). */
    for (size_t i = 0; ok && i < n_seq; i++) {
        KVCache *kv = &t->caches[i];
        atomic_init(&kv->prepopulated, 0);
        kv->kt = gpt2_fileio_alloc_table(t->kv_size * sizeof(float));
        kv->v = gpt2_fileio_alloc_table(t->kv_size * sizeof(float));
        kv->tokens = malloc(c->n_ctx * sizeof *kv->tokens);
        ok = kv->kt && kv->v && kv->tokens;
    }
    if (!ok) {
        double mib = (double)n_seq * 2 * t->kv_size * sizeof(float) / (1 << 20);
        snprintf(err, errsz, "out of memory (the KV cache needs %.0f MiB)", mib);
        gpt2_transformer_free(t);
        return false;
    }
    return true;
}

void gpt2_transformer_free(Transformer *t) {
    if (t->pool) gpt2_threadpool_free(t->pool);
    for (size_t i = 0; t->caches && i < t->n_seq; i++) {
        gpt2_fileio_free_table(t->caches[i].kt, t->kv_size * sizeof(float));
        gpt2_fileio_free_table(t->caches[i].v, t->kv_size * sizeof(float));
        free(t->caches[i].tokens);
    }
    free(t->caches);
    free(t->state.x);
    free(t->state.xn);
    free(t->state.qkv);
    free(t->state.att);
    free(t->state.fc);
    free(t->state.scores);
    free(t->state.xt);
    free(t->state.xq);
    free(t->state.xd);
    free(t->state.widened);
    free(t->state.logits);
    free(t->state.group_row);
    free(t->state.group_len);
    memset(t, 0, sizeof *t);
}

size_t gpt2_transformer_match(const Transformer *t, size_t s, const int32_t *ids, size_t n) {
    if (s >= t->n_seq) return 0;
    const KVCache *kv = &t->caches[s];
    size_t i = 0;
    while (i < n && i < kv->len && kv->tokens[i] == ids[i]) i++;
    return i;
}

/* ---- sharing prefixes ------------------------------------------------------ */

/* A copy of positions [from, to) of sequence src, as src reads them (from
 * its lender below its base_len), into dst's own cache; split over the
 * (layer, head) slices.  from is a multiple of 16.  Most of the work is the
 * kernel's filling of fresh pages, which the threads do side by side. */
typedef struct {
    const Transformer *t;
    const KVCache *src, *lender, *dst;
    size_t from, to;
} RangeCopy;

/* The end of the run of a slice's positions from p on that lie side by
 * side (one chunk, kv_row), at most `limit`. */
static size_t chunk_end(const Transformer *t, size_t p, size_t limit) {
    const size_t end = kv_chunk_end(t->n_ctx16, p);
    return end < limit ? end : limit;
}

static void run_range_copy(void *ctx, size_t begin, size_t end, int thread) {
    (void)thread;
    const RangeCopy *rc = ctx;
    const Transformer *t = rc->t;
    const size_t split = rc->src->base_len, k_to = (rc->to + 15) / 16 * 16, row = t->head_dim * sizeof(float);
    for (size_t lh = begin; lh < end; lh++) {
        /* Keys in whole blocks (the rest of the last is never read as
         * valid), values row by row; runs that end at a chunk's end and at
         * the source's split between what it borrows and what it holds. */
        for (size_t p = rc->from; p < k_to;) {
            const KVCache *from = p < split ? rc->lender : rc->src;
            const size_t end_p = chunk_end(t, p, p < split ? split : k_to), o = gpt2_kv_offset(t, lh, p);
            const size_t v_end = end_p < rc->to ? end_p : rc->to;
            populate_write(rc->dst->kt + o, (end_p - p) * row);
            memcpy(rc->dst->kt + o, from->kt + o, (end_p - p) * row);
            populate_write(rc->dst->v + o, (v_end - p) * row);
            memcpy(rc->dst->v + o, from->v + o, (v_end - p) * row);
            p = end_p;
        }
    }
}

static void copy_range(Transformer *t, size_t dst, size_t src, size_t from, size_t to) {
    if (from >= to) return;
    const ModelConfig *c = &t->model->config;
    const KVCache *s = &t->caches[src];
    RangeCopy rc = {t, s, s->base_len ? &t->caches[s->base] : s, &t->caches[dst], from, to};
    gpt2_threadpool_for(t->pool, (size_t)c->n_layer * c->n_head, 1, run_range_copy, &rc);
}

/* Sequence s borrows only positions below keep (a multiple of 16): the
 * rest of what it borrowed is copied into its own cache. */
static void borrow_less(Transformer *t, size_t s, size_t keep) {
    KVCache *kv = &t->caches[s];
    if (kv->base_len <= keep) return;
    copy_range(t, s, kv->base, keep, kv->base_len);
    kv->base_len = (uint32_t)keep;
}

void gpt2_transformer_own(Transformer *t, size_t s) {
    if (s < t->n_seq) borrow_less(t, s, 0);
}

/* Sequence s is about to write its positions pos and after: each sequence
 * that borrows them from s copies them first.  (A lender borrows nothing
 * itself: a copy into it comes after this.) */
static void lend_below(Transformer *t, size_t s, size_t pos) {
    for (size_t d = 0; d < t->n_seq; d++) {
        const KVCache *kv = &t->caches[d];
        if (d != s && kv->base_len > pos && kv->base == s) borrow_less(t, d, pos / 16 * 16);
    }
}

/* Sequence s is about to write its positions pos and after (borrowed ones
 * among them, in a rare rewind, are first its own). */
static void before_write(Transformer *t, size_t s, size_t pos) {
    lend_below(t, s, pos);
    borrow_less(t, s, pos / 16 * 16);
}

/* Sequence s is about to start afresh: nothing of what it holds or
 * borrows is kept. */
static void before_forget(Transformer *t, size_t s) {
    lend_below(t, s, 0);
    t->caches[s].base_len = 0;
}

void gpt2_transformer_reset(Transformer *t, size_t s) {
    if (s >= t->n_seq) return;
    before_forget(t, s);
    t->caches[s].len = 0;
}

bool gpt2_transformer_copy_prefix(Transformer *t, size_t dst, size_t src, uint32_t n_pos) {
    if (dst >= t->n_seq || src >= t->n_seq || n_pos > t->caches[src].len) return false;
    KVCache *to = &t->caches[dst];
    if (dst == src) {
        before_write(t, dst, n_pos);
        to->len = n_pos;
        return true;
    }
    before_forget(t, dst);
    const KVCache *from = &t->caches[src];
    /* Whole blocks are borrowed from whoever holds them; the rest copied. */
    size_t lender = from->base_len ? from->base : src;
    size_t borrow = n_pos / 16 * 16;
    if (from->base_len && from->base_len < borrow) borrow = from->base_len;
    to->base = (uint32_t)lender;
    to->base_len = (uint32_t)borrow;
    copy_range(t, dst, src, borrow, n_pos);
    memcpy(to->tokens, from->tokens, n_pos * sizeof *to->tokens);
    to->len = n_pos;
    if (n_pos / 16 * 16 > to->populated) to->populated = n_pos / 16 * 16;
    return true;
}

/* ---- jobs for the thread pool ------------------------------------------- */

/* Each thread's part of RunState.widened, in floats. */
static size_t widened_floats(const Transformer *t) {
    return t->kernels->widen_panels * PANEL_ROWS * t->state.widened_cols;
}

typedef struct {
    const KernelSet *k;
    MatmulArgs args;       /* args.widened: RunState.widened, of which each thread takes its part */
    size_t widened_floats; /* a thread's part */
} MatmulJob;

static void run_matmul(void *ctx, size_t begin, size_t end, int thread) {
    MatmulJob *job = ctx;
    MatmulArgs args = job->args;
    if (args.widened) args.widened += (size_t)thread * job->widened_floats;
    job->k->matmul(&args, begin, end);
}

typedef struct {
    const KernelSet *k;
    const float *x;
    size_t x_stride, n;
    uint8_t *xq;
    float *xd;
} QuantizeJob;

static void run_quantize(void *ctx, size_t begin, size_t end, int thread) {
    (void)thread;
    QuantizeJob *job = ctx;
    for (size_t r = begin; r < end; r++)
        job->k->quantize(job->xq + r * Q8_TERMS * job->n, job->xd + r * (job->n / Q8_BLOCK), job->x + r * job->x_stride,
                         job->n);
}

/* Columns of x per chunk of a transposition. */
#define TRANSPOSE_COLS 256

typedef struct {
    const KernelSet *k;
    const float *x;
    size_t x_stride, n_x;
    float *xt;
} TransposeJob;

/* xt[k][m] = x[m][k] for the columns k in [begin, end). */
static void run_transpose(void *ctx, size_t begin, size_t end, int thread) {
    (void)thread;
    TransposeJob *job = ctx;
    job->k->transpose(job->xt, job->x, job->x_stride, job->n_x, begin, end);
}

/* y = epilogue(W x + b) for n_x rows.  The threads share the panels, in
 * chunks of whole tiles.  q8_0 weights take the input quantized first; a
 * few rows against other weights, transposed too (kernels.h). */
static void matmul(Transformer *t, const Matrix *w, const float *bias, const float *x, size_t x_stride, float *y,
                   size_t y_stride, size_t n_x, Epilogue ep) {
    MatmulJob job = {t->kernels,
                     {w, bias, x, x_stride, y, y_stride, n_x, ep, NULL, NULL, NULL,
                      n_x == 1 ? t->stream.one_row : t->stream.common, t->state.widened, t->state.widened_cols},
                     widened_floats(t)};
    if (w->dtype != DTYPE_Q8_0 && n_x >= 2 && n_x <= t->kernels->wide_rows) {
        TransposeJob tr = {t->kernels, x, x_stride, n_x, t->state.xt};
        gpt2_threadpool_for(t->pool, w->cols, TRANSPOSE_COLS, run_transpose, &tr);
        job.args.xt = tr.xt;
    }
    if (w->dtype == DTYPE_Q8_0) {
        QuantizeJob q = {t->kernels, x, x_stride, w->cols, t->state.xq, t->state.xd};
        gpt2_threadpool_for(t->pool, n_x, SERIAL_ROWS, run_quantize, &q);
        job.args.xq = q.xq;
        job.args.xd = q.xd;
    }
    size_t panels = (w->rows + PANEL_ROWS - 1) / PANEL_ROWS;
    gpt2_threadpool_for(t->pool, panels, t->kernels->tile_panels, run_matmul, &job);
}

typedef struct {
    const KernelSet *k;
    float *out;
    const float *x, *w, *b;
    size_t n;
    float eps;
} NormJob;

static void run_layernorm(void *ctx, size_t begin, size_t end, int thread) {
    (void)thread;
    NormJob *job = ctx;
    for (size_t r = begin; r < end; r++)
        job->k->layernorm(job->out + r * job->n, job->x + r * job->n, job->w, job->b, job->n, job->eps);
}

static void layernorm_rows(Transformer *t, float *out, const float *x, const float *w, const float *b, size_t n_rows) {
    const ModelConfig *c = &t->model->config;
    NormJob job = {t->kernels, out, x, w, b, c->n_embd, c->ln_eps};
    gpt2_threadpool_for(t->pool, n_rows, SERIAL_ROWS, run_layernorm, &job);
}

typedef struct {
    Transformer *t;
    const Batch *b;
    size_t layer;
} AttentionJob;

/* Splits the rows into attention groups: runs of rows of one sequence at
 * consecutive positions (a prompt), at most attention_queries long. */
static void group_rows(Transformer *t, const Batch *b) {
    RunState *s = &t->state;
    const size_t most = t->kernels->attention_queries;
    s->n_groups = 0;
    for (size_t r = 0; r < b->n; r++) {
        size_t g = s->n_groups;
        if (g > 0) {
            size_t last = s->group_row[g - 1] + s->group_len[g - 1] - 1;
            if (last + 1 == r && s->group_len[g - 1] < most && b->seq[last] == b->seq[r] &&
                b->pos[last] + 1 == b->pos[r]) {
                s->group_len[g - 1]++;
                continue;
            }
        }
        s->group_row[g] = (uint32_t)r;
        s->group_len[g] = 1;
        s->n_groups++;
    }
}

/* Items are (group, head) pairs, head by head, so that one head's keys and
 * values stay in the cache while its groups are done; within a head the
 * last groups first: they see the most keys, and the chunks of a loop
 * shrink towards its end. */
static void run_attention(void *ctx, size_t begin, size_t end, int thread) {
    AttentionJob *job = ctx;
    Transformer *t = job->t;
    const RunState *s = &t->state;
    const ModelConfig *c = &t->model->config;
    const size_t C = c->n_embd, H = c->n_head, hd = C / H;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = s->scores + (size_t)thread * t->kernels->attention_queries * t->n_ctx16;
    for (size_t item = begin; item < end; item++) {
        size_t h = item / s->n_groups, g = s->n_groups - 1 - item % s->n_groups, r = s->group_row[g];
        assert(job->b->seq[r] < t->n_seq && s->group_len[g] <= t->kernels->attention_queries);
        const KVCache *kv = &t->caches[job->b->seq[r]];
        const KVCache *lender = kv->base_len ? &t->caches[kv->base] : kv;
        AttentionArgs a = {
            .q = s->qkv + r * 3 * C + h * hd,
            .q_stride = 3 * C,
            .kt = kv->kt,
            .v = kv->v,
            .slice = job->layer * H + h,
            .n_slices = t->n_slices,
            .capacity = t->n_ctx16,
            .kt_base = lender->kt,
            .v_base = lender->v,
            .n_base = kv->base_len,
            .n_q = s->group_len[g],
            .n_keys = job->b->pos[r] + 1,
            .head_dim = hd,
            .scale = scale,
            .scores = scores,
            .out = s->att + r * C + h * hd,
            .out_stride = C,
            .stream = t->stream.common,
        };
        t->kernels->attention(&a);
    }
}

typedef struct {
    Transformer *t;
    const Batch *b;
    size_t layer;
} StoreJob;

/* Copies the key and value of rows [begin, end) into their sequences'
 * caches. */
static void run_store_kv(void *ctx, size_t begin, size_t end, int thread) {
    (void)thread;
    const StoreJob *job = ctx;
    Transformer *t = job->t;
    const Batch *b = job->b;
    const size_t layer = job->layer;
    const ModelConfig *c = &t->model->config;
    const size_t C = c->n_embd, H = c->n_head, hd = C / H;
    for (size_t r = begin; r < end; r++) {
        const KVCache *kv = &t->caches[b->seq[r]];
        const size_t p = b->pos[r];
        const float *k = t->state.qkv + r * 3 * C + C, *v = k + C;
        for (size_t h = 0; h < H; h++) {
            float *key = kv->kt + gpt2_kv_key(t, layer * H + h, p);
            for (size_t d = 0; d < hd; d++) key[d * 16] = k[h * hd + d];
        }
        for (size_t h = 0; h < H; h++)
            memcpy(kv->v + gpt2_kv_offset(t, layer * H + h, p), v + h * hd, hd * sizeof(float));
    }
}

/* Positions whose pages one call fills ahead of the rows that write them. */
#define POPULATE_AHEAD 64

typedef struct {
    Transformer *t;
    const KVCache *kv;
    size_t from, to; /* positions, multiples of 16 */
} PopulateJob;

static void run_populate(void *ctx, size_t begin, size_t end, int thread) {
    (void)thread;
    const PopulateJob *job = ctx;
    const Transformer *t = job->t;
    for (size_t lh = begin; lh < end; lh++)
        for (size_t p = job->from; p < job->to;) {
            const size_t end_p = chunk_end(t, p, job->to), o = gpt2_kv_offset(t, lh, p);
            populate_write(job->kv->kt + o, (end_p - p) * t->head_dim * sizeof(float));
            populate_write(job->kv->v + o, (end_p - p) * t->head_dim * sizeof(float));
            p = end_p;
        }
}

/* Brings in, in one call per slice and chunk and from every thread, the
 * fresh pages of the key/value cache that the batch's rows will write,
 * POPULATE_AHEAD positions at a time: a page faulted in on its first write
 * costs several times more (about 19 us per 4 KiB page on our VMs), and a
 * short prompt writes into every one of the n_layer * n_head slices.  (In
 * 2 MiB pages the first call brings in the pages of the whole first
 * chunk, 8 MiB for 124M: on those VMs 0.2 us per 4 KiB of it, up to 6
 * us where the host has yet to back the memory, against some 5 us for a
 * 4 KiB page populated and touched.) */
static void populate_cache(Transformer *t, const Batch *b) {
    const ModelConfig *c = &t->model->config;
    for (size_t r = 0; r < b->n; r++) {
        KVCache *kv = &t->caches[b->seq[r]];
        const uint32_t pre = atomic_load_explicit(&kv->prepopulated, memory_order_acquire);
        if (kv->populated < pre) kv->populated = pre;
        if (b->pos[r] < kv->populated) continue;
        if (kv->populated < kv->base_len) kv->populated = kv->base_len; /* borrowed pages stay unused */
        size_t to = ((size_t)b->pos[r] + POPULATE_AHEAD) / POPULATE_AHEAD * POPULATE_AHEAD;
        if (to > t->n_ctx16) to = t->n_ctx16;
        PopulateJob job = {t, kv, kv->populated, to};
        gpt2_threadpool_for(t->pool, (size_t)c->n_layer * c->n_head, 1, run_populate, &job);
        kv->populated = (uint32_t)to;
    }
}

/* Rows of each scratch buffer populate_first brings in: a short prompt, or
 * a step of a batch of 16.  And the key/value positions: one block of each
 * slice's keys and values (a first pass of a short prompt touches no
 * more; in 4 KiB pages each fresh one costs some 10 us of the thread's
 * time on the VMs this was measured on, and four blocks made the thread
 * still busy, beside the pass, when it began). */
#define FIRST_ROWS 16
#define FIRST_POSITIONS 16

void gpt2_transformer_populate_first(Transformer *t, const atomic_bool *stop) {
    const ModelConfig *c = &t->model->config;
    const RunState *s = &t->state;
    const size_t C = c->n_embd, rows = t->max_rows < FIRST_ROWS ? t->max_rows : FIRST_ROWS, f = sizeof(float);
    const size_t threads = t->pool ? (size_t)gpt2_threadpool_size(t->pool) : 1;
    populate_write(s->x, rows * C * f);
    populate_write(s->xn, rows * C * f);
    populate_write(s->qkv, rows * 3 * C * f);
    populate_write(s->att, rows * C * f);
    populate_write(s->fc, rows * 4 * C * f);
    populate_write(s->scores, threads * t->kernels->attention_queries * t->n_ctx16 * f);
    populate_write(s->xt, t->kernels->wide_rows * 4 * C * f);
    populate_write(s->xq, rows * Q8_TERMS * 4 * C); /* q8_0 products only, but small */
    populate_write(s->xd, rows * (4 * C / Q8_BLOCK + 1) * f);
    if (s->widened) populate_write(s->widened, threads * widened_floats(t) * f);
    /* Sequence 0 only: a first completion runs there, and the others'
     * memory stays untouched until they are used. */
    if (atomic_load_explicit(stop, memory_order_relaxed)) return;
    KVCache *kv = &t->caches[0];
    PopulateJob job = {t, kv, 0, FIRST_POSITIONS}; /* n_ctx16 is a multiple of 16 */
    run_populate(&job, 0, (size_t)c->n_layer * c->n_head, 0);
    atomic_store_explicit(&kv->prepopulated, FIRST_POSITIONS, memory_order_release);
    /* Last, as in the pass: the row of logits its output head writes. */
    if (atomic_load_explicit(stop, memory_order_relaxed)) return;
    populate_write(s->logits, c->n_vocab * f);
}

/* ---- the spine ------------------------------------------------------------ */

static bool check_batch(Transformer *t, const Batch *b, char *err, size_t errsz) {
    const ModelConfig *c = &t->model->config;
    if (b->n == 0 || b->n > t->max_rows) {
        snprintf(err, errsz, "a batch holds 1 to %zu rows, not %zu", t->max_rows, b->n);
        return false;
    }
    for (size_t r = 0; r < b->n; r++) {
        if (b->token[r] < 0 || (uint32_t)b->token[r] >= c->n_vocab) {
            snprintf(err, errsz, "token id %d is outside the vocabulary (0..%u)", b->token[r], c->n_vocab - 1);
            return false;
        }
        if (b->seq[r] >= t->n_seq || b->pos[r] >= c->n_ctx) {
            snprintf(err, errsz, "row %zu is outside the context (sequence %u, position %u)", r, b->seq[r], b->pos[r]);
            return false;
        }
    }
    /* Positions of one sequence must continue what it holds, one by one.
     * Check against the lengths as they will be after each row. */
    for (size_t r = 0; r < b->n; r++) {
        uint32_t len = t->caches[b->seq[r]].len;
        for (size_t q = 0; q < r; q++)
            if (b->seq[q] == b->seq[r]) len = b->pos[q] + 1;
        if (b->pos[r] > len) {
            snprintf(err, errsz, "position %u of sequence %u comes before position %u", b->pos[r], b->seq[r], len);
            return false;
        }
    }
    return true;
}

bool gpt2_transformer_forward(Transformer *t, const Batch *b, float *logits, char *err, size_t errsz) {
    if (!check_batch(t, b, err, errsz)) return false;
    for (size_t r = 0; r < b->n; r++) before_write(t, b->seq[r], b->pos[r]);
    populate_cache(t, b);
    const Model *m = t->model;
    const ModelConfig *c = &m->config;
    const TransformerWeights *w = &m->weights;
    const size_t C = c->n_embd, n = b->n;
    RunState *s = &t->state;

    for (size_t r = 0; r < n; r++) {
        float *x = s->x + r * C;
        const float *pe = w->wpe + (size_t)b->pos[r] * C;
        gpt2_panel_unpack_row(w->wte.dtype, w->wte.data, C, (size_t)b->token[r], x);
        for (size_t i = 0; i < C; i++) x[i] = x[i] + pe[i];
    }
    group_rows(t, b);
    for (size_t l = 0; l < c->n_layer; l++) {
        const LayerWeights *lw = &w->layers[l];
        layernorm_rows(t, s->xn, s->x, lw->ln1_w, lw->ln1_b, n);
        matmul(t, &lw->qkv, lw->qkv_b, s->xn, C, s->qkv, 3 * C, n, EPI_STORE);
        StoreJob store = {t, b, l};
        gpt2_threadpool_for(t->pool, n, SERIAL_ROWS, run_store_kv, &store);
        AttentionJob att = {t, b, l};
        gpt2_threadpool_for(t->pool, s->n_groups * c->n_head, 1, run_attention, &att);
        matmul(t, &lw->proj, lw->proj_b, s->att, C, s->x, C, n, EPI_ADD);
        layernorm_rows(t, s->xn, s->x, lw->ln2_w, lw->ln2_b, n);
        matmul(t, &lw->fc, lw->fc_b, s->xn, C, s->fc, 4 * C, n, EPI_GELU);
        matmul(t, &lw->mlp, lw->mlp_b, s->fc, 4 * C, s->x, C, n, EPI_ADD);
        if (t->capture) gpt2_capture_layer(t, b, l);
    }
    for (size_t r = 0; r < n; r++) {
        KVCache *kv = &t->caches[b->seq[r]];
        kv->len = b->pos[r] + 1;
        kv->tokens[b->pos[r]] = b->token[r];
    }

    /* The output head, for the wanted rows only: gather them, normalise,
     * multiply by wte. */
    size_t n_out = 0;
    for (size_t r = 0; r < n; r++) {
        bool wanted = b->logits ? b->logits[r] : r == n - 1;
        if (wanted) memcpy(s->fc + n_out++ * C, s->x + r * C, C * sizeof(float));
    }
    if (n_out == 0) return true;
    layernorm_rows(t, s->xn, s->fc, w->lnf_w, w->lnf_b, n_out);
    matmul(t, &w->wte, NULL, s->xn, C, logits, c->n_vocab, n_out, EPI_STORE);
    return true;
}

void gpt2_transformer_head(Transformer *t, const float *x, size_t n, float *logits) {
    const TransformerWeights *w = &t->model->weights;
    layernorm_rows(t, t->state.xn, x, w->lnf_w, w->lnf_b, n);
    matmul(t, &w->wte, NULL, t->state.xn, t->model->config.n_embd, logits, t->model->config.n_vocab, n, EPI_STORE);
}
