/* vec16_portable.h - the 16-lane float vector of kernels_impl.h in plain C.
 *
 * Owns the portable meaning of every vector operation.  vec16_avx2.h and
 * vec16_avx512.h must compute exactly the same values: same lanes, same
 * rounding (fmaf for fused multiply-add, round-to-nearest-even).
 */
#ifndef GPT2_VEC16_PORTABLE_H
#define GPT2_VEC16_PORTABLE_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "dtype.h"

typedef struct {
    float f[16];
} V16;

#define V16_FOR for (int j = 0; j < 16; j++)

static inline V16 v_zero(void) {
    V16 r;
    V16_FOR r.f[j] = 0.0f;
    return r;
}
static inline V16 v_set1(float x) {
    V16 r;
    V16_FOR r.f[j] = x;
    return r;
}
static inline V16 v_load(const float *p) {
    V16 r;
    memcpy(r.f, p, sizeof r.f);
    return r;
}
static inline void v_store(float *p, V16 v) { memcpy(p, v.f, sizeof v.f); }
/* The first n (< 16) lanes from p, the others +0. */
static inline V16 v_load_part(const float *p, size_t n) {
    V16 r = v_zero();
    memcpy(r.f, p, n * sizeof(float));
    return r;
}
static inline void v_store_part(float *p, V16 v, size_t n) { memcpy(p, v.f, n * sizeof(float)); }
static inline V16 v_load_f16(const uint16_t *p) {
    V16 r;
    V16_FOR r.f[j] = gpt2_f16_to_f32(p[j]);
    return r;
}
static inline V16 v_load_bf16(const uint16_t *p) {
    V16 r;
    V16_FOR r.f[j] = gpt2_bf16_to_f32(p[j]);
    return r;
}
static inline V16 v_fma(V16 a, V16 b, V16 c) {
    V16 r;
    V16_FOR r.f[j] = fmaf(a.f[j], b.f[j], c.f[j]);
    return r;
}
static inline V16 v_add(V16 a, V16 b) {
    V16_FOR a.f[j] = a.f[j] + b.f[j];
    return a;
}
static inline V16 v_sub(V16 a, V16 b) {
    V16_FOR a.f[j] = a.f[j] - b.f[j];
    return a;
}
static inline V16 v_mul(V16 a, V16 b) {
    V16_FOR a.f[j] = a.f[j] * b.f[j];
    return a;
}
static inline V16 v_div(V16 a, V16 b) {
    V16_FOR a.f[j] = a.f[j] / b.f[j];
    return a;
}
/* max/min as the x86 instructions define them: the second operand when
 * either is NaN or both are zero. */
static inline V16 v_max(V16 a, V16 b) {
    V16_FOR a.f[j] = a.f[j] > b.f[j] ? a.f[j] : b.f[j];
    return a;
}
static inline V16 v_min(V16 a, V16 b) {
    V16_FOR a.f[j] = a.f[j] < b.f[j] ? a.f[j] : b.f[j];
    return a;
}
static inline V16 v_round(V16 a) { /* to nearest, ties to even */
    V16_FOR a.f[j] = nearbyintf(a.f[j]);
    return a;
}
/* 2^n for integer-valued n in [-126, 127]. */
static inline V16 v_pow2i(V16 n) {
    V16 r;
    V16_FOR {
        uint32_t bits = (uint32_t)((int32_t)n.f[j] + 127) << 23;
        memcpy(&r.f[j], &bits, 4);
    }
    return r;
}
/* The halves, quarters, ... added lane-wise: the fixed tree of kernels.h. */
static inline float v_reduce_add(V16 v) {
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) v.f[j] = v.f[j] + v.f[j + w];
    return v.f[0];
}
static inline float v_reduce_max(V16 v) {
    for (int w = 8; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) v.f[j] = v.f[j] > v.f[j + w] ? v.f[j] : v.f[j + w];
    return v.f[0];
}
/* r[j].f[i] = the old r[i].f[j]: a 16 x 16 block transposed in place. */
static inline void v_transpose16(V16 r[16]) {
    for (int i = 0; i < 16; i++)
        for (int j = i + 1; j < 16; j++) {
            float t = r[i].f[j];
            r[i].f[j] = r[j].f[i];
            r[j].f[i] = t;
        }
}
/* Hints: the data at p is read soon, and once (StreamHint in kernels.h).
 * Non-temporal (locality 0), or into the second-level cache (locality 2);
 * nothing where the compiler has no prefetch. */
#if defined(__GNUC__)
static inline void v_prefetch_nta(const void *p) { __builtin_prefetch(p, 0, 0); }
static inline void v_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }
#else
static inline void v_prefetch_nta(const void *p) { (void)p; }
static inline void v_prefetch_l2(const void *p) { (void)p; }
#endif
static inline V16 v_abs(V16 a) {
    V16_FOR a.f[j] = fabsf(a.f[j]);
    return a;
}
/* Lanes holding integers in -127..127, stored as bytes plus 128. */
static inline void v_store_q8(uint8_t *p, V16 v) { V16_FOR p[j] = (uint8_t)((int32_t)v.f[j] + 128); }

/* ---- integer dot products for q8_0 ----------------------------------------
 * V16I: 16 int32 lanes, one per panel row.  Q16: one group of a q8_0 block,
 * 16 rows x 4 quants (dtype.h).  X4: 4 activation quants, the same for every
 * row.  vi_dot adds, lane by lane, the 4 products of a row; vi_dot_bias
 * accumulates the correction that vi_sub takes off again (vpdpbusd, of the
 * avx512 and avxvnni sets, takes unsigned activations).  Every
 * implementation ends with the same exact integer sums. */
typedef struct {
    int32_t i[16];
} V16I;
typedef struct {
    int8_t b[64];
} Q16;
typedef struct {
    int32_t x[4];
} X4;

static inline V16I vi_zero(void) {
    V16I r;
    V16_FOR r.i[j] = 0;
    return r;
}
static inline Q16 q16_load(const uint8_t *p) {
    Q16 q;
    memcpy(q.b, p, sizeof q.b);
    return q;
}
static inline X4 x4_load(const uint8_t *p) { /* stored as q + 128 */
    X4 r = {{(int32_t)p[0] - 128, (int32_t)p[1] - 128, (int32_t)p[2] - 128, (int32_t)p[3] - 128}};
    return r;
}
static inline V16I vi_dot(V16I acc, X4 x, Q16 w) {
    V16_FOR {
        for (int t = 0; t < 4; t++) acc.i[j] += x.x[t] * w.b[4 * j + t];
    }
    return acc;
}
static inline V16I vi_dot_bias(V16I bias, Q16 w) {
    (void)w;
    return bias;
}
#define Q8_BIAS_TABLE 0 /* this set's sums need no bias: nothing to table */
static inline V16I vi_sub(V16I a, V16I b) {
    V16_FOR a.i[j] -= b.i[j];
    return a;
}
/* 255 * high + low: the sums of two digits (kernels.h), exact in int32. */
static inline V16I vi_base255(V16I high, V16I low) {
    V16_FOR high.i[j] = 255 * high.i[j] + low.i[j];
    return high;
}
static inline V16 vi_to_float(V16I a) {
    V16 r;
    V16_FOR r.f[j] = (float)a.i[j];
    return r;
}

#undef V16_FOR
#endif
