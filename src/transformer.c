/* transformer.c - see transformer.h.  transformer_forward is the spine;
 * the jobs below it are what the thread pool runs. */
#include "transformer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Below this many rows a LayerNorm or KV store runs on the calling thread:
 * handing it to the pool would cost more than it saves. */
#define SERIAL_ROWS 8

bool transformer_build(Transformer *t, const Model *model, const KernelSet *kernels, size_t n_seq, size_t max_rows,
                       int n_threads, char *err, size_t errsz) {
    memset(t, 0, sizeof *t);
    const ModelConfig *c = &model->config;
    const size_t C = c->n_embd;
    t->model = model;
    t->kernels = kernels;
    t->n_seq = n_seq;
    t->max_rows = max_rows;
    t->n_ctx16 = ((size_t)c->n_ctx + 15) / 16 * 16;
    t->pool = threadpool_create(n_threads);
    t->caches = calloc(n_seq, sizeof *t->caches);
    RunState *s = &t->state;
    s->x = malloc(max_rows * C * sizeof(float));
    s->xn = malloc(max_rows * C * sizeof(float));
    s->qkv = malloc(max_rows * 3 * C * sizeof(float));
    s->att = malloc(max_rows * C * sizeof(float));
    s->fc = malloc(max_rows * 4 * C * sizeof(float));
    s->scores = malloc((size_t)(n_threads > 0 ? n_threads : 1) * t->n_ctx16 * sizeof(float));
    bool ok = t->pool && t->caches && s->x && s->xn && s->qkv && s->att && s->fc && s->scores;
    /* calloc leaves the pages untouched until a position is written; the
     * zeros matter for the key blocks, whose unused lanes are read. */
    const size_t per_layer_k = t->n_ctx16 * C, per_layer_v = (size_t)c->n_ctx * C;
    for (size_t i = 0; ok && i < n_seq; i++) {
        t->caches[i].kt = calloc(c->n_layer * per_layer_k, sizeof(float));
        t->caches[i].v = calloc(c->n_layer * per_layer_v, sizeof(float));
        ok = t->caches[i].kt && t->caches[i].v;
    }
    if (!ok) {
        double mib = (double)n_seq * c->n_layer * (per_layer_k + per_layer_v) * 4 / (1 << 20);
        snprintf(err, errsz, "out of memory (the KV cache needs %.0f MiB)", mib);
        transformer_free(t);
        return false;
    }
    return true;
}

void transformer_free(Transformer *t) {
    if (t->pool) threadpool_free(t->pool);
    for (size_t i = 0; t->caches && i < t->n_seq; i++) {
        free(t->caches[i].kt);
        free(t->caches[i].v);
    }
    free(t->caches);
    free(t->state.x);
    free(t->state.xn);
    free(t->state.qkv);
    free(t->state.att);
    free(t->state.fc);
    free(t->state.scores);
    memset(t, 0, sizeof *t);
}

void transformer_reset(Transformer *t, size_t s) {
    if (s < t->n_seq) t->caches[s].len = 0;
}

/* ---- jobs for the thread pool ------------------------------------------- */

/* The share [begin, end) of n items that thread i of n_threads takes. */
static void share(size_t n, int i, int n_threads, size_t *begin, size_t *end) {
    *begin = n * (size_t)i / (size_t)n_threads;
    *end = n * (size_t)(i + 1) / (size_t)n_threads;
}

typedef struct {
    const KernelSet *k;
    MatmulArgs args;
} MatmulJob;

static void run_matmul(void *ctx, int i, int n_threads) {
    MatmulJob *job = ctx;
    size_t panels = (job->args.w->rows + PANEL_ROWS - 1) / PANEL_ROWS, begin, end;
    share(panels, i, n_threads, &begin, &end);
    if (begin < end) job->k->matmul(&job->args, begin, end);
}

static void matmul(Transformer *t, const Matrix *w, const float *bias, const float *x, size_t x_stride, float *y,
                   size_t y_stride, size_t n_x, Epilogue ep) {
    MatmulJob job = {t->kernels, {w, bias, x, x_stride, y, y_stride, n_x, ep}};
    threadpool_run(t->pool, run_matmul, &job);
}

typedef struct {
    const KernelSet *k;
    float *out;
    const float *x, *w, *b;
    size_t n_rows, n;
    float eps;
} NormJob;

static void run_layernorm(void *ctx, int i, int n_threads) {
    NormJob *job = ctx;
    size_t begin, end;
    share(job->n_rows, i, n_threads, &begin, &end);
    for (size_t r = begin; r < end; r++) job->k->layernorm(job->out + r * job->n, job->x + r * job->n, job->w, job->b, job->n, job->eps);
}

static void layernorm_rows(Transformer *t, float *out, const float *x, const float *w, const float *b, size_t n_rows) {
    const ModelConfig *c = &t->model->config;
    NormJob job = {t->kernels, out, x, w, b, n_rows, c->n_embd, c->ln_eps};
    if (n_rows < SERIAL_ROWS) run_layernorm(&job, 0, 1);
    else threadpool_run(t->pool, run_layernorm, &job);
}

typedef struct {
    Transformer *t;
    const Batch *b;
    size_t layer;
} AttentionJob;

/* Thread i takes the (row, head) pairs i, i + n, i + 2n, ...: interleaving
 * spreads the long rows at the end of a prompt over all threads. */
static void run_attention(void *ctx, int i, int n_threads) {
    AttentionJob *job = ctx;
    Transformer *t = job->t;
    const ModelConfig *c = &t->model->config;
    const size_t C = c->n_embd, H = c->n_head, hd = C / H;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = t->state.scores + (size_t)i * t->n_ctx16;
    for (size_t item = (size_t)i; item < job->b->n * H; item += (size_t)n_threads) {
        size_t r = item / H, h = item % H;
        const KVCache *kv = &t->caches[job->b->seq[r]];
        AttentionArgs a = {
            .q = t->state.qkv + r * 3 * C + h * hd,
            .kt = kv->kt + (job->layer * H + h) * t->n_ctx16 * hd,
            .v = kv->v + job->layer * c->n_ctx * C + h * hd,
            .v_stride = C,
            .n_keys = job->b->pos[r] + 1,
            .head_dim = hd,
            .scale = scale,
            .scores = scores,
            .out = t->state.att + r * C + h * hd,
        };
        t->kernels->attention(&a);
    }
}

/* Copies each row's key and value into its sequence's cache. */
static void store_kv(Transformer *t, const Batch *b, size_t layer) {
    const ModelConfig *c = &t->model->config;
    const size_t C = c->n_embd, H = c->n_head, hd = C / H;
    for (size_t r = 0; r < b->n; r++) {
        const KVCache *kv = &t->caches[b->seq[r]];
        const size_t p = b->pos[r];
        const float *k = t->state.qkv + r * 3 * C + C, *v = k + C;
        for (size_t h = 0; h < H; h++) {
            float *block = kv->kt + (layer * H + h) * t->n_ctx16 * hd + p / 16 * hd * 16 + p % 16;
            for (size_t d = 0; d < hd; d++) block[d * 16] = k[h * hd + d];
        }
        memcpy(kv->v + (layer * c->n_ctx + p) * C, v, C * sizeof(float));
    }
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

bool transformer_forward(Transformer *t, const Batch *b, float *logits, char *err, size_t errsz) {
    if (!check_batch(t, b, err, errsz)) return false;
    const Model *m = t->model;
    const ModelConfig *c = &m->config;
    const TransformerWeights *w = &m->weights;
    const size_t C = c->n_embd, n = b->n;
    RunState *s = &t->state;

    for (size_t r = 0; r < n; r++) {
        float *x = s->x + r * C;
        const float *pe = w->wpe + (size_t)b->pos[r] * C;
        panel_unpack_row(w->wte.dtype, w->wte.data, C, (size_t)b->token[r], x);
        for (size_t i = 0; i < C; i++) x[i] = x[i] + pe[i];
    }
    for (size_t l = 0; l < c->n_layer; l++) {
        const LayerWeights *lw = &w->layers[l];
        layernorm_rows(t, s->xn, s->x, lw->ln1_w, lw->ln1_b, n);
        matmul(t, &lw->qkv, lw->qkv_b, s->xn, C, s->qkv, 3 * C, n, EPI_STORE);
        store_kv(t, b, l);
        AttentionJob att = {t, b, l};
        threadpool_run(t->pool, run_attention, &att);
        matmul(t, &lw->proj, lw->proj_b, s->att, C, s->x, C, n, EPI_ADD);
        layernorm_rows(t, s->xn, s->x, lw->ln2_w, lw->ln2_b, n);
        matmul(t, &lw->fc, lw->fc_b, s->xn, C, s->fc, 4 * C, n, EPI_GELU);
        matmul(t, &lw->mlp, lw->mlp_b, s->fc, 4 * C, s->x, C, n, EPI_ADD);
    }
    for (size_t r = 0; r < n; r++) t->caches[b->seq[r]].len = b->pos[r] + 1;

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
