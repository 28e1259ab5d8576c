/* vec16_avx2.h - the 16-lane float vector of kernels_impl.h in AVX2 + FMA.
 *
 * A vector is a pair of ymm registers, lanes 0-7 and 8-15.  Every operation
 * computes exactly what its twin in vec16_portable.h computes.  Needs AVX2,
 * FMA and F16C; compiled with AVX-VNNI too (kernels_avxvnni.c), its integer
 * dot products take vpdpbusd instead.
 */
#ifndef GPT2_VEC16_AVX2_H
#define GPT2_VEC16_AVX2_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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
/* Data a kernel streams once, prefetched with either hint of StreamHint
 * (kernels.h): prefetchnta, or prefetcht1 into L2. */
static inline void v_prefetch_nta(const void *p) { __builtin_prefetch(p, 0, 0); }
static inline void v_prefetch_l2(const void *p) { __builtin_prefetch(p, 0, 2); }
/* An 8 x 8 block transposed in place. */
static inline void v16_transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}
/* r[j] lane i = the old r[i] lane j: four 8 x 8 blocks. */
static inline void v_transpose16(V16 r[16]) {
    __m256 a[8], b[8], c[8], d[8];
    for (int i = 0; i < 8; i++) {
        a[i] = r[i].lo;
        b[i] = r[i].hi;
        c[i] = r[i + 8].lo;
        d[i] = r[i + 8].hi;
    }
    v16_transpose8(a);
    v16_transpose8(b);
    v16_transpose8(c);
    v16_transpose8(d);
    for (int i = 0; i < 8; i++) {
        r[i] = v16_make(a[i], c[i]);
        r[i + 8] = v16_make(b[i], d[i]);
    }
}
static inline V16 v_abs(V16 a) {
    const __m256 m = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    return v16_make(_mm256_and_ps(a.lo, m), _mm256_and_ps(a.hi, m));
}
static inline void v_store_q8(uint8_t *p, V16 v) {
    const __m256i bias = _mm256_set1_epi32(128);
    __m256i lo = _mm256_add_epi32(_mm256_cvtps_epi32(v.lo), bias);
    __m256i hi = _mm256_add_epi32(_mm256_cvtps_epi32(v.hi), bias);
    __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8); /* 16 x u16, in order */
    __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i *)(void *)p, b);
}

/* Integer dot products: 16 int32 sums, rows 0-7 in the low half. */
typedef struct {
    __m256i lo, hi;
} V16I;
static inline V16I vi_zero(void) {
    V16I r = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    return r;
}
#if defined(__AVXVNNI__)
/* Integer dot products (see vec16_portable.h) with AVX-VNNI's vpdpbusd on
 * 8 lanes, as in vec16_avx512.h: it multiplies unsigned by signed bytes,
 * so the activations go in as q + 128 and vi_dot_bias sums 128 * w to take
 * off again. */
typedef struct {
    __m256i lo, hi;
} Q16;
typedef __m256i X4; /* the 4 activation bytes, q + 128, in every 32-bit lane */

static inline Q16 q16_load(const uint8_t *p) {
    Q16 q = {_mm256_loadu_si256((const __m256i *)(const void *)p),
             _mm256_loadu_si256((const __m256i *)(const void *)(p + 32))};
    return q;
}
static inline X4 x4_load(const uint8_t *p) {
    int32_t x;
    memcpy(&x, p, 4);
    return _mm256_set1_epi32(x);
}
static inline V16I vi_dot(V16I acc, X4 x, Q16 w) {
    V16I r = {_mm256_dpbusd_avx_epi32(acc.lo, x, w.lo), _mm256_dpbusd_avx_epi32(acc.hi, x, w.hi)};
    return r;
}
static inline V16I vi_dot_bias(V16I bias, Q16 w) { return vi_dot(bias, _mm256_set1_epi8((char)0x80), w); }
#define Q8_BIAS_TABLE 1
#else
/* Integer dot products (see vec16_portable.h) with vpmaddubsw (the avx2
 * set's q8_0 products of 2 to 7 rows, or without MatmulArgs.widened: the
 * others take 16-bit integers, kernels_avx2.c), which
 * multiplies unsigned by signed bytes and adds pairs into saturating int16:
 * |w| times x with the sign of w, at most 2 * 128 * 127 < 2^15, so nothing
 * saturates and every sum is exact.  A Q16 carries its quants and their
 * magnitudes. */
typedef struct {
    __m256i lo, hi, abs_lo, abs_hi;
} Q16;
typedef __m256i X4; /* the 4 signed quants, in every 32-bit lane */

static inline Q16 q16_load(const uint8_t *p) {
    Q16 q;
    q.lo = _mm256_loadu_si256((const __m256i *)(const void *)p);
    q.hi = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    q.abs_lo = _mm256_abs_epi8(q.lo);
    q.abs_hi = _mm256_abs_epi8(q.hi);
    return q;
}
static inline X4 x4_load(const uint8_t *p) {
    int32_t x;
    memcpy(&x, p, 4);
    return _mm256_xor_si256(_mm256_set1_epi32(x), _mm256_set1_epi8((char)0x80)); /* q + 128 -> q */
}
static inline __m256i v16_dot_half(__m256i acc, X4 x, __m256i w, __m256i w_abs) {
    __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(x, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
static inline V16I vi_dot(V16I acc, X4 x, Q16 w) {
    V16I r = {v16_dot_half(acc.lo, x, w.lo, w.abs_lo), v16_dot_half(acc.hi, x, w.hi, w.abs_hi)};
    return r;
}
static inline V16I vi_dot_bias(V16I bias, Q16 w) {
    (void)w;
    return bias;
}
#define Q8_BIAS_TABLE 0 /* this set's sums need no bias: nothing to table */
#endif
static inline V16I vi_sub(V16I a, V16I b) {
    V16I r = {_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)};
    return r;
}
static inline __m256i v16_base255_half(__m256i high, __m256i low) {
    return _mm256_add_epi32(_mm256_sub_epi32(_mm256_slli_epi32(high, 8), high), low);
}
static inline V16I vi_base255(V16I high, V16I low) {
    V16I r = {v16_base255_half(high.lo, low.lo), v16_base255_half(high.hi, low.hi)};
    return r;
}
static inline V16 vi_to_float(V16I a) { return v16_make(_mm256_cvtepi32_ps(a.lo), _mm256_cvtepi32_ps(a.hi)); }

#undef V16_MAP2
#endif
