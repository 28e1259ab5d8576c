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
    V16_FOR r.f[j] = f16_to_f32(p[j]);
    return r;
}
static inline V16 v_load_bf16(const uint16_t *p) {
    V16 r;
    V16_FOR r.f[j] = bf16_to_f32(p[j]);
    return r;
}
static inline V16 v_load_i8(const int8_t *p) {
    V16 r;
    V16_FOR r.f[j] = (float)p[j];
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
static inline V16 v_sqrt(V16 a) {
    V16_FOR a.f[j] = sqrtf(a.f[j]);
    return a;
}

#undef V16_FOR
#endif
