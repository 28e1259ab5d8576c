/* vec16_avx2.h - the 16-lane float vector of kernels_impl.h in AVX2 + FMA.
 *
 * A vector is a pair of ymm registers, lanes 0-7 and 8-15.  Every operation
 * computes exactly what its twin in vec16_portable.h computes.  Needs AVX2,
 * FMA and F16C.
 */
#ifndef GPT2_VEC16_AVX2_H
#define GPT2_VEC16_AVX2_H

#include <immintrin.h>
#include <stdint.h>

typedef struct {
    __m256 lo, hi;
} V16;

static inline V16 v16_make(__m256 lo, __m256 hi) {
    V16 r = {lo, hi};
    return r;
}
#define V16_MAP2(op, a, b) v16_make(op((a).lo, (b).lo), op((a).hi, (b).hi))

static inline V16 v_zero(void) { return v16_make(_mm256_setzero_ps(), _mm256_setzero_ps()); }
static inline V16 v_set1(float x) { return v16_make(_mm256_set1_ps(x), _mm256_set1_ps(x)); }
static inline V16 v_load(const float *p) { return v16_make(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)); }
static inline void v_store(float *p, V16 v) {
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
}
/* Lane masks for the first n lanes of each half. */
static inline __m256i v16_mask(size_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}
static inline V16 v_load_part(const float *p, size_t n) {
    __m256 lo = _mm256_maskload_ps(p, v16_mask(n));
    __m256 hi = n > 8 ? _mm256_maskload_ps(p + 8, v16_mask(n - 8)) : _mm256_setzero_ps();
    return v16_make(lo, hi);
}
static inline void v_store_part(float *p, V16 v, size_t n) {
    _mm256_maskstore_ps(p, v16_mask(n), v.lo);
    if (n > 8) _mm256_maskstore_ps(p + 8, v16_mask(n - 8), v.hi);
}
static inline V16 v_load_f16(const uint16_t *p) {
    return v16_make(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p)),
                    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p + 8))));
}
static inline __m256 v16_bf16_half(const uint16_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
static inline V16 v_load_bf16(const uint16_t *p) { return v16_make(v16_bf16_half(p), v16_bf16_half(p + 8)); }
static inline V16 v_load_i8(const int8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)(const void *)p);
    return v16_make(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)),
                    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(b, 8))));
}
static inline V16 v_fma(V16 a, V16 b, V16 c) {
    return v16_make(_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi));
}
static inline V16 v_add(V16 a, V16 b) { return V16_MAP2(_mm256_add_ps, a, b); }
static inline V16 v_sub(V16 a, V16 b) { return V16_MAP2(_mm256_sub_ps, a, b); }
static inline V16 v_mul(V16 a, V16 b) { return V16_MAP2(_mm256_mul_ps, a, b); }
static inline V16 v_div(V16 a, V16 b) { return V16_MAP2(_mm256_div_ps, a, b); }
static inline V16 v_max(V16 a, V16 b) { return V16_MAP2(_mm256_max_ps, a, b); }
static inline V16 v_min(V16 a, V16 b) { return V16_MAP2(_mm256_min_ps, a, b); }
#define V16_ROUND_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline V16 v_round(V16 a) {
    return v16_make(_mm256_round_ps(a.lo, V16_ROUND_NEAREST), _mm256_round_ps(a.hi, V16_ROUND_NEAREST));
}
#undef V16_ROUND_NEAREST
static inline __m256 v16_pow2i_half(__m256 n) {
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
}
static inline V16 v_pow2i(V16 n) { return v16_make(v16_pow2i_half(n.lo), v16_pow2i_half(n.hi)); }
static inline float v_reduce_add(V16 v) {
    __m256 a = _mm256_add_ps(v.lo, v.hi);
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    b = _mm_add_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}
static inline float v_reduce_max(V16 v) {
    __m256 a = _mm256_max_ps(v.lo, v.hi);
    __m128 b = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_max_ps(b, _mm_movehl_ps(b, b));
    b = _mm_max_ss(b, _mm_movehdup_ps(b));
    return _mm_cvtss_f32(b);
}
static inline V16 v_sqrt(V16 a) { return v16_make(_mm256_sqrt_ps(a.lo), _mm256_sqrt_ps(a.hi)); }

#undef V16_MAP2
#endif
