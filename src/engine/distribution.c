/* distribution.c - see distribution.h. */
#include "distribution.h"

#include <math.h>

double gpt2_dist_log_z(const float *logits, size_t n) {
    double max = -INFINITY;
    for (size_t v = 0; v < n; v++)
        if (logits[v] > max) max = logits[v]; /* NaN compares false */
    if (!isfinite(max)) return max;
    double sum = 0;
    for (size_t v = 0; v < n; v++)
        if (logits[v] == logits[v]) sum += exp((double)logits[v] - max);
    return max + log(sum);
}

double gpt2_dist_logprob(const float *logits, int32_t id, double log_z) {
    float l = logits[id];
    return l == l ? (double)l - log_z : -INFINITY;
}

/* Does (la, a) rank before (lb, b)?  Higher logit first, then lower id. */
static int ranks_before(float la, int32_t a, float lb, int32_t b) { return la > lb || (la == lb && a < b); }

size_t gpt2_dist_top_k(const float *logits, size_t n, size_t k, double log_z, DistEntry *out) {
    /* An insertion into a sorted list of at most k: k is small (<= 20 for
     * the callers), and most logits fail the first comparison. */
    size_t m = 0;
    for (size_t v = 0; v < n && k > 0; v++) {
        float l = logits[v];
        if (!(l > -INFINITY)) continue; /* NaN and -inf */
        if (m == k && !ranks_before(l, (int32_t)v, logits[out[m - 1].id], out[m - 1].id)) continue;
        size_t i = m < k ? m++ : k - 1;
        while (i > 0 && ranks_before(l, (int32_t)v, logits[out[i - 1].id], out[i - 1].id)) {
            out[i] = out[i - 1];
            i--;
        }
        out[i].id = (int32_t)v;
    }
    for (size_t i = 0; i < m; i++) out[i].logprob = (double)logits[out[i].id] - log_z;
    return m;
}

double gpt2_dist_entropy_bits(const float *logits, size_t n, double log_z) {
    double h = 0;
    for (size_t v = 0; v < n; v++) {
        float l = logits[v];
        if (!(l > -INFINITY)) continue;
        double lp = (double)l - log_z;
        h -= exp(lp) * lp;
    }
    return h / log(2.0);
}

size_t gpt2_dist_rank(const float *logits, size_t n, int32_t id) {
    float l = logits[id];
    if (!(l > -INFINITY)) l = -INFINITY; /* NaN ranks with -inf */
    size_t before = 0;
    for (size_t v = 0; v < n; v++) {
        float lv = logits[v];
        if (!(lv > -INFINITY)) lv = -INFINITY;
        before += (size_t)ranks_before(lv, (int32_t)v, l, id);
    }
    return before + 1;
}
