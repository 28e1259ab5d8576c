/* inspect.c - see inspect.h. */
#include "inspect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distribution.h"

/* Rows per forward call while inspecting: each needs a row of logits, so
 * this bounds the logits buffer (32 x 50257 floats, 6.4 MB). */
#define INSPECT_ROWS 32

/* ---- the capture hook ------------------------------------------------------- */

typedef struct {
    Transformer *t;
    const Batch *b;
    size_t layer;
} CaptureJob;

/* The softmax weights w[0..p] of query q (slice lh) over the keys 0..p
 * cached in kt, recomputed with the forward pass's math in double. */
static void attention_weights(const Transformer *t, const float *q, const float *kt, size_t lh, size_t p, double *w) {
    const size_t hd = t->head_dim;
    const double scale = 1.0 / sqrt((double)hd);
    double max = -INFINITY;
    for (size_t s = 0; s <= p; s++) {
        const float *key = kt + gpt2_kv_key(t, lh, s);
        double dot = 0;
        for (size_t d = 0; d < hd; d++) dot += (double)q[d] * key[d * 16];
        w[s] = dot * scale;
        if (w[s] > max) max = w[s];
    }
    double sum = 0;
    for (size_t s = 0; s <= p; s++) sum += w[s] = exp(w[s] - max);
    for (size_t s = 0; s <= p; s++) w[s] /= sum;
}

/* Items are (row, head) pairs. */
static void run_capture(void *ctx, size_t begin, size_t end, int thread) {
    const CaptureJob *job = ctx;
    const Transformer *t = job->t;
    const Capture *cap = t->capture;
    const ModelConfig *c = &t->model->config;
    const size_t C = c->n_embd, H = c->n_head, hd = C / H, n = cap->n, win = cap->window;
    double *w = cap->scratch + (size_t)thread * c->n_ctx;
    for (size_t item = begin; item < end; item++) {
        const size_t r = item / H, h = item % H, p = job->b->pos[r], lh = job->layer * H + h;
        if (job->b->seq[r] != cap->seq || p >= n) continue;
        const float *q = t->state.qkv + r * 3 * C + h * hd;
        attention_weights(t, q, t->caches[cap->seq].kt, lh, p, w);
        if (cap->distance) {
            double dist = 0;
            for (size_t s = 0; s <= p; s++) dist += w[s] * (double)(p - s);
            cap->distance[lh * n + p] = (float)dist;
        }
        if (cap->last && p == n - 1)
            for (size_t s = 0; s < n; s++) cap->last[lh * n + s] = (float)w[s];
        if (cap->attention && p >= n - win) {
            float *row = cap->attention + (lh * win + (p - (n - win))) * win;
            for (size_t j = 0; j < win; j++) {
                size_t s = n - win + j;
                row[j] = s <= p ? (float)w[s] : 0.0f;
            }
        }
    }
}

void gpt2_capture_layer(Transformer *t, const Batch *b, size_t layer) {
    const Capture *cap = t->capture;
    gpt2_transformer_own(t, cap->seq); /* run_capture reads its keys in place */
    const ModelConfig *c = &t->model->config;
    const size_t C = c->n_embd;
    if (cap->residual)
        for (size_t r = 0; r < b->n; r++)
            if (b->seq[r] == cap->seq && b->pos[r] < cap->n)
                memcpy(cap->residual + (layer * cap->n + b->pos[r]) * C, t->state.x + r * C, C * sizeof(float));
    CaptureJob job = {t, b, layer};
    gpt2_threadpool_for(t->pool, b->n * c->n_head, 1, run_capture, &job);
}

/* ---- inspection --------------------------------------------------------------- */

void gpt2_inspect_free(Gpt2Inspection *x) {
    free(x->norm_wte);
    free(x->norm_wpe);
    free(x->norm_sum);
    free(x->attention);
    free(x->attention_last);
    free(x->attention_distance);
    free(x->top);
    free(x->entropy_bits);
    free(x->next_rank);
    free(x->next_prob);
    free(x->lens_id);
    free(x->lens_prob);
    free(x->lens_margin);
    memset(x, 0, sizeof *x);
}

static double norm(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

static bool embedding_norms(const Transformer *t, const int32_t *ids, Gpt2Inspection *x) {
    const TransformerWeights *w = &t->model->weights;
    const size_t C = x->n_embd;
    float *row = malloc(2 * C * sizeof *row);
    if (!row) return false;
    for (size_t i = 0; i < x->n; i++) {
        const float *pe = w->wpe + i * C;
        gpt2_panel_unpack_row(w->wte.dtype, w->wte.data, C, (size_t)ids[i], row);
        for (size_t j = 0; j < C; j++) row[C + j] = row[j] + pe[j];
        x->norm_wte[i] = norm(row, C);
        x->norm_wpe[i] = norm(pe, C);
        x->norm_sum[i] = norm(row + C, C);
    }
    free(row);
    return true;
}

/* The distribution after position i from its logits. */
static void predict(Gpt2Inspection *x, const int32_t *ids, size_t i, const float *logits, DistEntry *scratch) {
    const size_t V = x->n_vocab, k = x->top_k;
    const double log_z = gpt2_dist_log_z(logits, V);
    size_t m = gpt2_dist_top_k(logits, V, k, log_z, scratch);
    for (size_t j = 0; j < k; j++)
        x->top[i * k + j] = j < m ? (Gpt2TokenProb){scratch[j].id, exp(scratch[j].logprob)} : (Gpt2TokenProb){-1, 0};
    x->entropy_bits[i] = gpt2_dist_entropy_bits(logits, V, log_z);
    if (i + 1 < x->n) {
        x->next_rank[i] = (uint32_t)gpt2_dist_rank(logits, V, ids[i + 1]);
        x->next_prob[i] = exp(gpt2_dist_logprob(logits, ids[i + 1], log_z));
    } else {
        x->next_rank[i] = 0;
        x->next_prob[i] = NAN;
    }
}

/* The forward pass over the prompt, with the capture set; the logits of
 * every row feed the predictions. */
static bool forward_all(Transformer *t, const int32_t *ids, Gpt2Inspection *x, float *logits, char *err, size_t errsz) {
    uint32_t pos[INSPECT_ROWS], seq[INSPECT_ROWS] = {0};
    bool want[INSPECT_ROWS];
    DistEntry top[64];
    const size_t rows_most = t->max_rows < INSPECT_ROWS ? t->max_rows : INSPECT_ROWS;
    gpt2_transformer_reset(t, 0);
    for (size_t r0 = 0; r0 < x->n; r0 += rows_most) {
        const size_t rows = x->n - r0 < rows_most ? x->n - r0 : rows_most;
        for (size_t r = 0; r < rows; r++) {
            pos[r] = (uint32_t)(r0 + r);
            want[r] = true;
        }
        Batch b = {rows, ids + r0, pos, seq, want};
        if (!gpt2_transformer_forward(t, &b, logits, err, errsz)) return false;
        for (size_t r = 0; r < rows; r++) predict(x, ids, r0 + r, logits + r * x->n_vocab, top);
    }
    return true;
}

/* The logit lens of every layer from the captured residuals. */
static void logit_lens(Transformer *t, const float *residual, Gpt2Inspection *x, float *logits) {
    const size_t rows_most = t->max_rows < INSPECT_ROWS ? t->max_rows : INSPECT_ROWS, V = x->n_vocab;
    DistEntry top[2];
    for (size_t l = 0; l < x->n_layer; l++) {
        for (size_t r0 = 0; r0 < x->n; r0 += rows_most) {
            const size_t rows = x->n - r0 < rows_most ? x->n - r0 : rows_most;
            gpt2_transformer_head(t, residual + (l * x->n + r0) * x->n_embd, rows, logits);
            for (size_t r = 0; r < rows; r++) {
                const float *row = logits + r * V;
                const double log_z = gpt2_dist_log_z(row, V);
                size_t m = gpt2_dist_top_k(row, V, 2, log_z, top);
                const size_t at = l * x->n + r0 + r;
                x->lens_id[at] = m > 0 ? top[0].id : -1;
                x->lens_prob[at] = m > 0 ? exp(top[0].logprob) : 0;
                x->lens_margin[at] = m > 1 ? top[0].logprob - top[1].logprob : INFINITY;
            }
        }
    }
}

bool gpt2_inspect_run(Transformer *t, const int32_t *ids, size_t n, const Gpt2InspectOptions *o, Gpt2Inspection *x,
                      char *err, size_t errsz) {
    const ModelConfig *c = &t->model->config;
    memset(x, 0, sizeof *x);
    if (n == 0 || n > c->n_ctx) {
        snprintf(err, errsz, "inspection takes 1 to %u tokens, not %zu", c->n_ctx, n);
        return false;
    }
    if (o->top_k > 64) {
        snprintf(err, errsz, "inspection keeps at most 64 likeliest tokens, not %u", o->top_k);
        return false;
    }
    x->n = n;
    x->n_layer = c->n_layer;
    x->n_head = c->n_head;
    x->n_embd = c->n_embd;
    x->n_vocab = c->n_vocab;
    x->n_ctx = c->n_ctx;
    x->top_k = o->top_k ? o->top_k : 5;
    x->window = o->attention_window && o->attention_window < n ? o->attention_window : (uint32_t)n;
    const size_t L = c->n_layer, H = c->n_head, C = c->n_embd, w = x->window;
    const size_t threads = (size_t)gpt2_threadpool_size(t->pool);
    x->norm_wte = malloc(n * sizeof(double));
    x->norm_wpe = malloc(n * sizeof(double));
    x->norm_sum = malloc(n * sizeof(double));
    x->attention = malloc(L * H * w * w * sizeof(float));
    x->attention_last = malloc(L * H * n * sizeof(float));
    x->attention_distance = calloc(L * H, sizeof(double));
    x->top = malloc(n * x->top_k * sizeof *x->top);
    x->entropy_bits = malloc(n * sizeof(double));
    x->next_rank = malloc(n * sizeof(uint32_t));
    x->next_prob = malloc(n * sizeof(double));
    bool ok = x->norm_wte && x->norm_wpe && x->norm_sum && x->attention && x->attention_last && x->attention_distance &&
              x->top && x->entropy_bits && x->next_rank && x->next_prob;
    if (o->logit_lens) {
        x->lens_id = malloc(L * n * sizeof(int32_t));
        x->lens_prob = malloc(L * n * sizeof(double));
        x->lens_margin = malloc(L * n * sizeof(double));
        ok = ok && x->lens_id && x->lens_prob && x->lens_margin;
    }
    Capture cap = {
        .seq = 0,
        .n = (uint32_t)n,
        .window = (uint32_t)w,
        .residual = o->logit_lens ? malloc(L * n * C * sizeof(float)) : NULL,
        .attention = x->attention,
        .last = x->attention_last,
        .distance = malloc(L * H * n * sizeof(float)),
        .scratch = malloc(threads * c->n_ctx * sizeof(double)),
    };
    const size_t rows_most = t->max_rows < INSPECT_ROWS ? t->max_rows : INSPECT_ROWS;
    float *logits = malloc(rows_most * c->n_vocab * sizeof(float));
    ok = ok && cap.distance && cap.scratch && logits && (!o->logit_lens || cap.residual);
    if (ok && !embedding_norms(t, ids, x)) ok = false;
    if (!ok) snprintf(err, errsz, "out of memory (inspecting %zu tokens)", n);
    if (ok) {
        t->capture = &cap;
        ok = forward_all(t, ids, x, logits, err, errsz);
        t->capture = NULL;
    }
    if (ok) {
        for (size_t lh = 0; lh < L * H; lh++) {
            double sum = 0;
            for (size_t q = 0; q < n; q++) sum += cap.distance[lh * n + q];
            x->attention_distance[lh] = sum / (double)n;
        }
        if (o->logit_lens) logit_lens(t, cap.residual, x, logits);
    }
    free(cap.residual);
    free(cap.distance);
    free(cap.scratch);
    free(logits);
    gpt2_transformer_reset(t, 0);
    if (!ok) gpt2_inspect_free(x);
    return ok;
}
