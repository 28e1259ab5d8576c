/* kernels_avx2.c - the kernels for CPUs with AVX2, FMA and F16C.
 * Built with -mavx2 -mfma -mf16c; only called after gpt2_kernels_select() saw
 * the CPU support them.
 *
 * Owns, besides the shared body, this set's q8_0 products: without VNNI an
 * int8 multiply-add costs more than an FP32 FMA, so they run on 16-bit
 * integers (below), where the avxvnni set takes vpdpbusd. */
#include "kernels.h"

#if defined(GPT2_HAVE_AVX2)
#include "tuning_avx2.h"
#include "vec16_avx2.h"

#define KERNEL_SET_NAME gpt2_kernels_avx2
#define KERNEL_SET_LABEL "avx2"
#define Q8_SCRATCH 1
#define GPT2_KERNELS_BODY_OK 1
#include "kernels_body.inc"

/* ---- q8_0 on 16-bit integers ------------------------------------------
 *
 * A q8_0 block's sums (kernels.h) need s1 = sum q1 w and 255 s2 + s3 =
 * sum r w, r = 255 q2 + q3 (|r| <= 32512), exact.  Here the input row is
 * held as two planes of int16, q1 and r, and the quants as int16, so that
 * one vpmaddwd multiplies 16 of them and adds pairs into int32 exactly
 * (|w r| + |w' r'| <= 2 * 128 * 32512 < 2^24, a block's sum < 2^28):
 * per 4 inputs and 16 rows 8 vpmaddwd and 8 vpaddd, where the digits
 * through vpmaddubsw took 24 instructions, 12 of them multiplies.  The
 * integers are the same, so are the bits.  On a Zen 3 (2026-12-07; one
 * thread, 3072 x 768 from L2): 64 rows 1.3x the digits' speed, one row
 * 1.17-1.26x; 124M q8_0 pp512 1.3x (docs/performance.md).
 *
 * MatmulArgs.widened holds, per thread, the planes of Q8W_ROWS input rows
 * (4 bytes a column each), then Q8W_PANELS panels of quants widened to
 * int16 (32 bytes a column each). */
#define Q8W_ROWS 2   /* input rows of a tile of many */
#define Q8W_PANELS 2 /* panels widened at a time */
/* Products of 2 to Q8W_MIN_ROWS - 1 rows keep the digits' tiles: widening
 * a panel costs about what one row's products of it do, and from memory
 * 3 and 5 rows ran 10-25 % slower widened, 8 the same, 12 to 64 rows
 * 1.1-1.3x faster (and a first token of 5 rows 4 ms slower). */
#define Q8W_MIN_ROWS 8
_Static_assert(Q8W_ROWS * 4 + Q8W_PANELS * PANEL_ROWS * 2 <= MM_NP * PANEL_ROWS * 4,
               "the planes and the widened panels fit MatmulArgs.widened (widen_panels = MM_NP)");

/* planes[k] = q1 and planes[K + k] = 255 q2 + q3 for k < K, from the
 * digits (plus 128) of one row, xq[t * K + k]. */
static void q8w_planes(int16_t *planes, const uint8_t *xq, size_t K) {
    const __m256i bias = _mm256_set1_epi16(128);
    for (size_t k = 0; k < K; k += 16) {
        __m256i d[Q8_TERMS];
        for (int t = 0; t < Q8_TERMS; t++)
            d[t] = _mm256_sub_epi16(
                _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(xq + (size_t)t * K + k))), bias);
        const __m256i r = _mm256_add_epi16(_mm256_sub_epi16(_mm256_slli_epi16(d[1], 8), d[1]), d[2]);
        _mm256_storeu_si256((__m256i *)(void *)(planes + k), d[0]);
        _mm256_storeu_si256((__m256i *)(void *)(planes + K + k), r);
    }
}

/* One panel's quants as int16, per block and group of 4 columns four
 * vectors: rows 0-7 columns 0-1, rows 0-7 columns 2-3, then rows 8-15
 * (each row's pair side by side, as vpmaddwd takes them). */
static void q8w_widen_panel(int16_t *out, const uint8_t *panel, size_t n_blocks) {
    /* Within each 128-bit lane (4 rows x 4 columns): columns 0-1 of the
     * 4 rows, then columns 2-3. */
    const __m256i pairs = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12,
                                           13, 2, 3, 6, 7, 10, 11, 14, 15);
    for (size_t b = 0; b < n_blocks; b++) {
        const uint8_t *q = panel + b * Q8_BLOCK_BYTES + PANEL_ROWS * 2;
        for (size_t g = 0; g < Q8_BLOCK / Q8_GROUP; g++)
            for (size_t h = 0; h < 2; h++, out += 32) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(q + g * 64 + h * 32));
                v = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(v, pairs), 0xD8);
                _mm256_storeu_si256((__m256i *)(void *)out, _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)));
                _mm256_storeu_si256((__m256i *)(void *)(out + 16),
                                    _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)));
            }
    }
}

static inline __m256i q8w_pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* mr (1 or 2) input rows from m0 against panel p, its quants widened at
 * wz; planes of row m0 + i at planes + 2 K i.  The loop over a block's
 * groups stays rolled: gcc 12 unrolled it into every multiply first and
 * spilled the sums. */
KERNEL_INLINE void q8w_tile(int mr, const MatmulArgs *a, size_t m0, size_t p, const int16_t *wz,
                            const int16_t *planes) {
    const size_t K = a->w->cols, n_blocks = K / Q8_BLOCK;
    const uint8_t *panel = (const uint8_t *)a->w->data + p * n_blocks * Q8_BLOCK_BYTES;
    V16 acc[Q8W_ROWS];
    for (int i = 0; i < mr; i++) acc[i] = v_zero();
    for (size_t b = 0; b < n_blocks; b++) {
        V16I s1[Q8W_ROWS], s23[Q8W_ROWS];
        for (int i = 0; i < mr; i++) s1[i] = s23[i] = vi_zero();
#pragma GCC unroll 1
        for (size_t g = 0; g < Q8_BLOCK / Q8_GROUP; g++) {
            const int16_t *w = wz + (b * (Q8_BLOCK / Q8_GROUP) + g) * 64;
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)w),
                          w1 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 16)),
                          w2 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 32)),
                          w3 = _mm256_loadu_si256((const __m256i *)(const void *)(w + 48));
            for (int i = 0; i < mr; i++) {
                const int16_t *x = planes + 2 * K * (size_t)i + b * Q8_BLOCK + g * Q8_GROUP;
                const __m256i q01 = q8w_pair(x), q23 = q8w_pair(x + 2), r01 = q8w_pair(x + K),
                              r23 = q8w_pair(x + K + 2);
                s1[i].lo = _mm256_add_epi32(s1[i].lo,
                                            _mm256_add_epi32(_mm256_madd_epi16(w0, q01), _mm256_madd_epi16(w1, q23)));
                s1[i].hi = _mm256_add_epi32(s1[i].hi,
                                            _mm256_add_epi32(_mm256_madd_epi16(w2, q01), _mm256_madd_epi16(w3, q23)));
                s23[i].lo = _mm256_add_epi32(s23[i].lo,
                                             _mm256_add_epi32(_mm256_madd_epi16(w0, r01), _mm256_madd_epi16(w1, r23)));
                s23[i].hi = _mm256_add_epi32(s23[i].hi,
                                             _mm256_add_epi32(_mm256_madd_epi16(w2, r01), _mm256_madd_epi16(w3, r23)));
            }
        }
        const V16 dw = v_load_f16((const uint16_t *)(const void *)(panel + b * Q8_BLOCK_BYTES));
        for (int i = 0; i < mr; i++)
            acc[i] = q8_block_step(acc[i], s1[i], s23[i], dw, a->xd[(m0 + (size_t)i) * n_blocks + b]);
    }
    float buf[Q8W_ROWS * 16];
    for (int i = 0; i < mr; i++) v_store(buf + i * 16, acc[i]);
    store_tile(a, m0, p, mr, 1, buf);
}

/* The int32 sums of rows 0-7 from two vectors of 4 rows' pairs of sums. */
static inline __m256i q8w_rows8(__m256i rows03, __m256i rows47) {
    return _mm256_permute4x64_epi64(_mm256_hadd_epi32(rows03, rows47), 0xD8);
}

/* One input row against panel p, its quants widened as they stream in:
 * 4 rows x 4 columns a vector, so each int32 lane sums half a row's
 * products and the halves are added at each block's end. */
KERNEL_INLINE void q8w_row(const MatmulArgs *a, size_t p, const int16_t *planes) {
    const size_t K = a->w->cols, n_blocks = K / Q8_BLOCK;
    const uint8_t *panel = (const uint8_t *)a->w->data + p * n_blocks * Q8_BLOCK_BYTES;
    V16 acc = v_zero();
    for (size_t b = 0; b < n_blocks; b++) {
        const uint8_t *blk = panel + b * Q8_BLOCK_BYTES, *q = blk + PANEL_ROWS * 2;
        __m256i s1[4], s23[4];
        for (int j = 0; j < 4; j++) s1[j] = s23[j] = _mm256_setzero_si256();
#pragma GCC unroll 2
        for (size_t g = 0; g < Q8_BLOCK / Q8_GROUP; g++, q += Q8_GROUP * PANEL_ROWS) {
            prefetch_stream(a->stream, q + ROW_PREFETCH_Q8);
            const int16_t *x = planes + b * Q8_BLOCK + g * Q8_GROUP;
            int64_t x4, r4;
            memcpy(&x4, x, 8);
            memcpy(&r4, x + K, 8);
            const __m256i xq = _mm256_set1_epi64x(x4), xr = _mm256_set1_epi64x(r4);
            for (int j = 0; j < 4; j++) {
                const __m256i w = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + 16 * j)));
                s1[j] = _mm256_add_epi32(s1[j], _mm256_madd_epi16(w, xq));
                s23[j] = _mm256_add_epi32(s23[j], _mm256_madd_epi16(w, xr));
            }
        }
        const V16I t1 = {q8w_rows8(s1[0], s1[1]), q8w_rows8(s1[2], s1[3])};
        const V16I t23 = {q8w_rows8(s23[0], s23[1]), q8w_rows8(s23[2], s23[3])};
        acc = q8_block_step(acc, t1, t23, v_load_f16((const uint16_t *)(const void *)blk), a->xd[b]);
    }
    float buf[16];
    v_store(buf, acc);
    store_tile(a, 0, p, 1, 1, buf);
}

static bool matmul_q8_scratch(const MatmulArgs *a, size_t p_begin, size_t p_end) {
    const size_t K = a->w->cols, n_blocks = K / Q8_BLOCK;
    if (!a->widened || a->widened_cols < K || (a->n_x > 1 && a->n_x < Q8W_MIN_ROWS)) return false;
    int16_t *planes = (int16_t *)(void *)a->widened, *wz = planes + Q8W_ROWS * 2 * K;
    if (a->n_x == 1) {
        q8w_planes(planes, a->xq, K);
        for (size_t p = p_begin; p < p_end; p++) q8w_row(a, p, planes);
        return true;
    }
    for (size_t p = p_begin; p < p_end; p += Q8W_PANELS) {
        const size_t np = p_end - p < Q8W_PANELS ? p_end - p : Q8W_PANELS;
        for (size_t j = 0; j < np; j++)
            q8w_widen_panel(wz + j * PANEL_ROWS * K, (const uint8_t *)a->w->data + (p + j) * n_blocks * Q8_BLOCK_BYTES,
                            n_blocks);
        /* The next panels come in while these compute: each tile of rows
         * prefetches its share of their bytes (q8_0 tiles, kernels_body.inc). */
        const char *next = (const char *)a->w->data + (p + np) * n_blocks * Q8_BLOCK_BYTES;
        const size_t next_np = p + np >= p_end ? 0 : p_end - p - np < Q8W_PANELS ? p_end - p - np : Q8W_PANELS;
        const size_t next_bytes = next_np * n_blocks * Q8_BLOCK_BYTES, n_tiles = (a->n_x + Q8W_ROWS - 1) / Q8W_ROWS;
        for (size_t m = 0, tile = 0; m < a->n_x; m += Q8W_ROWS, tile++) {
            const size_t mr = a->n_x - m < Q8W_ROWS ? a->n_x - m : Q8W_ROWS;
            for (size_t off = next_bytes * tile / n_tiles / 64 * 64; off < next_bytes * (tile + 1) / n_tiles; off += 64)
                prefetch_stream(a->stream, next + off);
            for (size_t i = 0; i < mr; i++) q8w_planes(planes + 2 * K * i, a->xq + (m + i) * Q8_TERMS * K, K);
            for (size_t j = 0; j < np; j++) {
                if (mr == Q8W_ROWS) q8w_tile(Q8W_ROWS, a, m, p + j, wz + j * PANEL_ROWS * K, planes);
                else q8w_tile(1, a, m, p + j, wz + j * PANEL_ROWS * K, planes);
            }
        }
    }
    return true;
}
#else
const KernelSet gpt2_kernels_avx2 = {0};
#endif
