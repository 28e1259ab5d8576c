/* vec16_avx512.h - the 16-lane float vector of kernels_impl.h in AVX-512.
 *
 * One zmm register per vector.  Every operation computes exactly what its
 * twin in vec16_portable.h computes.  Needs AVX512F, F16C-style conversion
 * (vcvtph2ps is part of AVX512F), AVX512BW/VL for the partial loads and
 * AVX512_VNNI for the integer dot products.
 */
#ifndef GPT2_VEC16_AVX512_H
#define GPT2_VEC16_AVX512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef __m512 V16;

static inline V16 v_zero(void) { return _mm512_setzero_ps(); }
static inline V16 v_set1(float x) { return _mm512_set1_ps(x); }
static inline V16 v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_store(float *p, V16 v) { _mm512_storeu_ps(p, v); }
static inline V16 v_load_part(const float *p, size_t n) { return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p); }
static inline void v_store_part(float *p, V16 v, size_t n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v); }
static inline V16 v_load_f16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
static inline V16 v_load_bf16(const uint16_t *p) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}
static inline V16 v_fma(V16 a, V16 b, V16 c) { return _mm512_fmadd_ps(a, b, c); }
static inline V16 v_add(V16 a, V16 b) { return _mm512_add_ps(a, b); }
static inline V16 v_sub(V16 a, V16 b) { return _mm512_sub_ps(a, b); }
static inline V16 v_mul(V16 a, V16 b) { return _mm512_mul_ps(a, b); }
static inline V16 v_div(V16 a, V16 b) { return _mm512_div_ps(a, b); }
static inline V16 v_max(V16 a, V16 b) { return _mm512_max_ps(a, b); }
static inline V16 v_min(V16 a, V16 b) { return _mm512_min_ps(a, b); }
static inline V16 v_round(V16 a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline V16 v_pow2i(V16 n) {
    __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
static inline float v_reduce_add(V16 v) {
    __m256 a =
        _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}
static inline float v_reduce_max(V16 v) {
    __m256 a =
        _mm256_max_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}
/* Data a kernel streams once, prefetched with either hint of StreamHint
 * (kernels.h): prefetchnta, or prefetcht1 into L2. */
static inline void v_prefetch_nta(const void *p) { __builtin_prefetch(p, 0, 0); }
static inline void v_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }
/* r[j] lane i = the old r[i] lane j: 16 x 16 transposed in four rounds of
 * shuffles (pairs of lanes, then of 2, 4 and 8). */
static inline void v_transpose16(V16 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xDD);
    }
}
static inline V16 v_abs(V16 a) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7FFFFFFF)));
}
static inline void v_store_q8(uint8_t *p, V16 v) {
    __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(v), _mm512_set1_epi32(128));
    _mm_storeu_si128((__m128i *)(void *)p, _mm512_cvtepi32_epi8(i));
}

/* Integer dot products (see vec16_portable.h): vpdpbusd multiplies
 * unsigned by signed bytes, so the activations go in as q + 128 and
 * vi_dot_bias sums 128 * w to take off again. */
typedef __m512i V16I;
typedef __m512i Q16;
typedef __m512i X4;

static inline V16I vi_zero(void) { return _mm512_setzero_si512(); }
static inline Q16 q16_load(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }
static inline X4 x4_load(const uint8_t *p) {
    int32_t x;
    memcpy(&x, p, 4);
    return _mm512_set1_epi32(x);
}
static inline V16I vi_dot(V16I acc, X4 x, Q16 w) { return _mm512_dpbusd_epi32(acc, x, w); }
static inline V16I vi_dot_bias(V16I bias, Q16 w) { return _mm512_dpbusd_epi32(bias, _mm512_set1_epi8((char)0x80), w); }
static inline V16I vi_sub(V16I a, V16I b) { return _mm512_sub_epi32(a, b); }
static inline V16I vi_base255(V16I high, V16I low) { /* (high << 8) - high + low */
    return _mm512_add_epi32(_mm512_sub_epi32(_mm512_slli_epi32(high, 8), high), low);
}
static inline V16 vi_to_float(V16I a) { return _mm512_cvtepi32_ps(a); }
#define Q8_BIAS_TABLE 1

#endif
