/* sampler.c - see sampler.h. */
#include "sampler.h"

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

double sampler_uniform(Sampler *s) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

bool sampler_build(Sampler *s, const Gpt2Sampling *p, uint32_t n_vocab) {
    memset(s, 0, sizeof *s);
    s->params = *p;
    s->n_vocab = n_vocab;
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
    s->candidates = malloc(n_vocab * sizeof *s->candidates);
    s->seen = calloc(n_vocab, 1);
    if (!s->candidates || !s->seen) {
        sampler_free(s);
        return false;
    }
    return true;
}

void sampler_free(Sampler *s) {
    free(s->candidates);
    free(s->seen);
    memset(s, 0, sizeof *s);
}

/* Higher logit first, then lower id: a total order, so sorting is
 * deterministic. */
static int by_logit(const void *a, const void *b) {
    const Candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static void apply_penalty(Sampler *s, float *logits, const int32_t *history, size_t n_history) {
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

static int32_t argmax(const float *logits, uint32_t n) {
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return (int32_t)best;
}

/* Moves the k best candidates to the front, sorted, keeping a heap of the
 * best k seen so far with the worst of them on top: O(n log k). */
static void sift_down(Candidate *h, size_t k, size_t i) {
    for (;;) {
        size_t worst = i, l = 2 * i + 1, r = l + 1;
        if (l < k && by_logit(&h[l], &h[worst]) > 0) worst = l;
        if (r < k && by_logit(&h[r], &h[worst]) > 0) worst = r;
        if (worst == i) return;
        Candidate t = h[i];
        h[i] = h[worst], h[worst] = t;
        i = worst;
    }
}

static void keep_top_k(Candidate *c, size_t n, size_t k) {
    for (size_t i = k / 2; i-- > 0;) sift_down(c, k, i);
    for (size_t i = k; i < n; i++) {
        if (by_logit(&c[i], &c[0]) < 0) {
            c[0] = c[i];
            sift_down(c, k, 0);
        }
    }
    qsort(c, k, sizeof *c, by_logit);
}

int32_t sampler_sample(Sampler *s, float *logits, const int32_t *history, size_t n_history) {
    const Gpt2Sampling *p = &s->params;
    apply_penalty(s, logits, history, n_history);
    if (p->temperature <= 0) return argmax(logits, s->n_vocab);

    Candidate *c = s->candidates;
    size_t n = s->n_vocab;
    for (size_t i = 0; i < n; i++) c[i] = (Candidate){(int32_t)i, logits[i] / p->temperature, 0};
    bool sorted = false;
    if (p->top_k > 0 && p->top_k < n) {
        keep_top_k(c, n, p->top_k);
        n = p->top_k;
        sorted = true;
    }
    float max = c[0].logit;
    for (size_t i = 1; i < n; i++)
        if (c[i].logit > max) max = c[i].logit;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += c[i].p = exp((double)c[i].logit - max);
    if (p->top_p < 1.0f) {
        if (!sorted) qsort(c, n, sizeof *c, by_logit);
        double cum = 0, target = p->top_p * sum;
        size_t keep = 0;
        while (keep < n && cum < target) cum += c[keep++].p;
        n = keep ? keep : 1;
        sum = cum > 0 ? cum : c[0].p;
    }
    double r = sampler_uniform(s) * sum, cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (r < cum) return c[i].id;
    }
    return c[n - 1].id; /* rounding left r at the very top */
}
