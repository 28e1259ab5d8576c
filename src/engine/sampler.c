/* sampler.c - see sampler.h. */
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(Sampler *s) {
    uint64_t *r = s->rng;
    uint64_t result = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;
    r[2] ^= r[0], r[3] ^= r[1], r[1] ^= r[2], r[0] ^= r[3];
    r[2] ^= t;
    r[3] = rotl(r[3], 45);
    return result;
}

double gpt2_sampler_uniform(Sampler *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

bool gpt2_sampler_build(Sampler *s, const Gpt2Sampling *p, uint32_t n_vocab) {
    memset(s, 0, sizeof *s);
    s->params = *p;
    s->n_vocab = n_vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->candidates = malloc(n_vocab * sizeof *s->candidates);
    s->seen = calloc(n_vocab, 1);
    s->counts = calloc(n_vocab, sizeof *s->counts);
    s->occurred = malloc(n_vocab * sizeof *s->occurred);
    if (!s->candidates || !s->seen || !s->counts || !s->occurred) {
        gpt2_sampler_free(s);
        return false;
    }
    return true;
}

void gpt2_sampler_free(Sampler *s) {
    free(s->candidates);
    free(s->seen);
    free(s->counts);
    free(s->occurred);
    memset(s, 0, sizeof *s);
}

/* Higher logit first, then lower id: a total order, so sorting is
 * deterministic. */
static int by_logit(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void gpt2_sampler_accept(Sampler *s, int32_t token) {
    if (token < 0 || (uint32_t)token >= s->n_vocab) return;
    if (s->counts[token]++ == 0) s->occurred[s->n_occurred++] = token;
}

/* NaN and infinite logits (a damaged model) become -inf: never chosen.
 * Written without branches, so that it vectorizes. */
static void sanitize(float *logits, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) logits[i] = fabsf(logits[i]) <= FLT_MAX ? logits[i] : -INFINITY;
}

static void apply_bias(const Sampler *s, float *logits) {
    for (size_t i = 0; i < s->params.n_logit_bias; i++) {
        const Gpt2LogitBias *b = &s->params.logit_bias[i];
        if (b->id >= 0 && (uint32_t)b->id < s->n_vocab) logits[b->id] += b->bias;
    }
}

static void apply_repeat_penalty(Sampler *s, float *logits, const int32_t *history, size_t n_history) {
    const float penalty = s->params.repeat_penalty;
    if (penalty == 1.0f || s->params.repeat_last_n == 0) return;
    size_t n = n_history < s->params.repeat_last_n ? n_history : s->params.repeat_last_n;
    const int32_t *recent = history + n_history - n;
    for (size_t i = 0; i < n; i++) { /* each distinct token once */
        int32_t id = recent[i];
        if (id < 0 || (uint32_t)id >= s->n_vocab || s->seen[id]) continue;
        s->seen[id] = 1;
        logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
    }
    for (size_t i = 0; i < n; i++)
        if (recent[i] >= 0 && (uint32_t)recent[i] < s->n_vocab) s->seen[recent[i]] = 0;
}

static void apply_presence_frequency(const Sampler *s, float *logits) {
    const float presence = s->params.presence_penalty, frequency = s->params.frequency_penalty;
    if (presence == 0 && frequency == 0) return;
    for (size_t i = 0; i < s->n_occurred; i++) {
        int32_t id = s->occurred[i];
        logits[id] -= presence;
        logits[id] -= frequency * (float)s->counts[id];
    }
}

/* Bans every token that would complete an n-gram already in ctx[0..m):
 * wherever the last n-1 tokens occurred before, the token that followed
 * them then may not follow them now. */
static void apply_no_repeat_ngram(const Sampler *s, float *logits, const int32_t *ctx, size_t m) {
    const size_t n = s->params.no_repeat_ngram;
    if (n == 0 || m + 1 < n) return;
    const int32_t *tail = ctx + m - (n - 1);
    for (size_t i = 0; i + n - 1 < m; i++) {
        if (memcmp(ctx + i, tail, (n - 1) * sizeof *ctx) != 0) continue;
        int32_t next = ctx[i + n - 1];
        if (next >= 0 && (uint32_t)next < s->n_vocab) logits[next] = -INFINITY;
    }
}

/* Scanning 50257 logits is most of a sampling step, so it goes by blocks:
 * the largest of a block, in plain C written so that compilers turn it
 * into vector max instructions, tells whether any of its 64 values needs a
 * closer look.  A NaN never wins a comparison, here or below. */
enum { SCAN_BLOCK = 64 };

static float block_max(const float *x) {
    float m[16];
    for (int j = 0; j < 16; j++) m[j] = x[j];
    for (int i = 16; i < SCAN_BLOCK; i += 16)
        for (int j = 0; j < 16; j++) m[j] = x[i + j] > m[j] ? x[i + j] : m[j];
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) m[j] = m[j + w] > m[j] ? m[j + w] : m[j];
    return m[0];
}

/* The first id of the largest logit. */
static int32_t argmax(const float *logits, uint32_t n) {
    uint32_t best = 0, i = 1;
    for (; i < n && i % SCAN_BLOCK; i++)
        if (logits[i] > logits[best]) best = i;
    for (; i + SCAN_BLOCK <= n; i += SCAN_BLOCK) {
        if (!(block_max(logits + i) > logits[best])) continue;
        for (uint32_t j = i; j < i + SCAN_BLOCK; j++)
            if (logits[j] > logits[best]) best = j;
    }
    for (; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return (int32_t)best;
}

/* Candidate heaps.  With WORST_ON_TOP the root is the candidate that ranks
 * last (to keep the k best seen so far); with BEST_ON_TOP it is the one that
 * ranks first (to take the best one by one). */
enum { BEST_ON_TOP = -1, WORST_ON_TOP = 1 };

static void sift_down(Candidate *h, size_t n, size_t i, int top) {
    for (;;) {
        size_t t = i, l = 2 * i + 1, r = l + 1;
        if (l < n && top * by_logit(&h[l], &h[t]) > 0) t = l;
        if (r < n && top * by_logit(&h[r], &h[t]) > 0) t = r;
        if (t == i) return;
        Candidate tmp = h[i];
        h[i] = h[t], h[t] = tmp;
        i = t;
    }
}

static void heapify(Candidate *h, size_t n, int top) {
    for (size_t i = n / 2; i-- > 0;) sift_down(h, n, i, top);
}

/* A NaN logit (from a damaged model) ranks last, so that the orders below
 * stay total. */
static float ranked(float x) { return x == x ? x : -INFINITY; }

/* The k best tokens of logits[0..n) in c[0..k), best first, logits as
 * they are.  Ids are visited in increasing order, so a token whose logit
 * does not beat the worst one kept ranks after it: one comparison rejects
 * it, as it rejects nearly every token once the heap holds good ones. */
static void select_top_k(const float *logits, size_t n, size_t k, Candidate *c) {
    for (size_t i = 0; i < k; i++) c[i] = (Candidate){(int32_t)i, ranked(logits[i]), 0};
    heapify(c, k, WORST_ON_TOP);
    float worst = c[0].logit;
    for (size_t i = k; i < n;) {
        if (i % SCAN_BLOCK == 0 && i + SCAN_BLOCK <= n && !(block_max(logits + i) > worst)) {
            i += SCAN_BLOCK;
            continue;
        }
        if (logits[i] > worst) {
            c[0] = (Candidate){(int32_t)i, logits[i], 0};
            sift_down(c, k, 0, WORST_ON_TOP);
            worst = c[0].logit;
        }
        i++;
    }
    qsort(c, k, sizeof *c, by_logit);
}

/* Keeps the fewest best candidates whose probability reaches `target` (at
 * least one), best first in c[0..m); returns m, and their mass in *mass.
 * Unsorted candidates are taken from a heap one by one, so that a nucleus
 * of a few tokens out of 50257 costs no full sort. */
static size_t nucleus(Candidate *c, size_t n, bool sorted, double target, double *mass) {
    double cum = 0;
    size_t m = 0;
    if (sorted) {
        do cum += c[m++].p;
        while (m < n && cum < target);
    } else {
        heapify(c, n, BEST_ON_TOP);
        size_t end = n; /* the best so far collect in c[end..n), best last */
        do {
            Candidate best = c[0];
            c[0] = c[--end];
            c[end] = best;
            sift_down(c, end, 0, BEST_ON_TOP);
            cum += best.p;
        } while (end > 0 && cum < target);
        m = n - end;
        for (size_t i = 0; i < m; i++) c[i] = c[n - 1 - i]; /* best first; c[end..] is not read again */
    }
    *mass = cum;
    return m;
}

/* Keeps the candidates of c[0..n) whose weight is at least min_weight, in
 * their order; returns how many, their total weight in *sum. */
static size_t keep_at_least(Candidate *c, size_t n, double min_weight, double *sum) {
    size_t m = 0;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(c[i].p >= min_weight)) continue;
        total += c[i].p;
        c[m++] = c[i];
    }
    *sum = total;
    return m;
}

int32_t gpt2_sampler_sample(Sampler *s, float *logits, const SamplerHistory *h) {
    static const SamplerHistory none = {0};
    const Gpt2Sampling *p = &s->params;
    if (!h) h = &none;
    sanitize(logits, s->n_vocab);
    apply_bias(s, logits);
    apply_repeat_penalty(s, logits, h->recent, h->n_recent);
    apply_presence_frequency(s, logits);
    apply_no_repeat_ngram(s, logits, h->context, h->n_context);
    if (!(p->temperature >= GPT2_MIN_TEMPERATURE)) {
        int32_t best = argmax(logits, s->n_vocab);
        return logits[best] > -INFINITY ? best : SAMPLER_NONE;
    }

    Candidate *c = s->candidates;
    size_t n = s->n_vocab;
    bool sorted = p->top_k > 0 && p->top_k < n;
    if (sorted) {
        n = p->top_k;
        select_top_k(logits, s->n_vocab, n, c);
        for (size_t i = 0; i < n; i++) c[i].logit /= p->temperature;
    } else {
        for (size_t i = 0; i < n; i++) c[i] = (Candidate){(int32_t)i, logits[i] / p->temperature, 0};
    }
    float max = c[0].logit;
    for (size_t i = 1; i < n; i++)
        if (c[i].logit > max) max = c[i].logit;
    if (!(max > -INFINITY)) return SAMPLER_NONE;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += c[i].p = exp((double)c[i].logit - max);
    if (p->top_p < 1.0f) n = nucleus(c, n, sorted, p->top_p * sum, &sum);
    if (p->min_p > 0) n = keep_at_least(c, n, (double)p->min_p, &sum); /* the likeliest has weight exp(0) = 1 */
    double r = gpt2_sampler_uniform(s) * sum, cum = 0;
    size_t last = 0; /* the last candidate that can be drawn */
    for (size_t i = 0; i < n; i++) {
        if (!(c[i].p > 0)) continue;
        cum += c[i].p;
        last = i;
        if (r < cum) return c[i].id;
    }
    return c[last].id; /* rounding left r at the very top */
}
