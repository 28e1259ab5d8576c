/* kernels_impl.h - the kernel bodies, written once against a 16-lane vector.
 *
 * Owns the arithmetic of kernels.h.  It is compiled three times: by
 * kernels_portable.c, kernels_avx2.c and kernels_avx512.c, each of which
 * first includes its vec16_*.h (the V16 type and v_* operations) and defines
 * KERNEL_SET_NAME, KERNEL_SET_LABEL and the tile sizes: MM_MR x MM_NP
 * (input rows x panels) for matrix products of many rows, MM_WIDE (16, 8,
 * 4 or 2) for up to that many rows, MM_NP1 panels for one row, the MR, NP
 * and NP1 again with _Q8 for q8_0 weights (MM_NP1 must be a
 * multiple of MM_NP, MM_NP_Q8 and MM_NP1_Q8), and for attention
 * AT_QUERIES queries (at most 8) x AT_VECS vectors of 16 dimensions.  The
 * tile sizes change speed only: every output is one fixed chain of
 * operations whatever the tiling.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "kernels.h"

#if defined(__GNUC__)
#define KERNEL_INLINE static inline __attribute__((always_inline))
#define KERNEL_NOINLINE __attribute__((noinline))
#else
#define KERNEL_INLINE static inline
#define KERNEL_NOINLINE
#endif

_Static_assert(MM_MR <= 6 && MM_MR_Q8 <= 6, "TILE_ROWS handles at most 5 rows left over");
#ifndef AT_CHAINS
#define AT_CHAINS 8 /* attention score chains side by side: enough to hide the FMA latency */
#endif
_Static_assert(AT_CHAINS <= 8, "attention_scores handles at most 7 blocks left over");
_Static_assert(MM_WIDE == 2 || MM_WIDE == 4 || MM_WIDE == 8 || MM_WIDE == 16,
               "TILE_WIDE halves MM_WIDE down to 1; transpose takes at most 16 rows");
_Static_assert(MM_NP1 % MM_NP == 0 && MM_NP1 % MM_NP_Q8 == 0 && MM_NP1 % MM_NP1_Q8 == 0,
               "threads split matrices in multiples of MM_NP1 panels");

/* How far ahead of its reads (bytes) a product of one row prefetches each
 * panel of 16-bit weights, one of q8_0 weights its one stream, and a wide
 * tile its one panel; each measured best on a Zen 5. */
#define ROW_PREFETCH 2048
#define ROW_PREFETCH_Q8 8192
#define WIDE_PREFETCH 16384

/* Rows and results of the largest matrix-product tiles. */
#define MM_ROWS_MAX (MM_MR > MM_WIDE ? MM_MR : MM_WIDE)
#define MM_MAX2(a, b) ((a) > (b) ? (a) : (b))
#define MM_NP_Q8_MAX MM_MAX2(MM_NP_Q8, MM_NP1_Q8)
#define MM_TILE_MAX MM_MAX2(MM_MAX2(MM_MR * MM_NP1, MM_MR_Q8 * MM_NP_Q8_MAX), MM_WIDE)

/* ---- elementwise functions ------------------------------------------- */

/* exp(x) for x <= 88, clamped below at -87.3 where it reaches the smallest
 * normal float: x = n ln2 + r, |r| <= ln2/2, e^r by its degree-7 Taylor
 * polynomial (error < 1 ulp), times 2^n. */
KERNEL_INLINE V16 v_exp(V16 x) {
    x = v_min(v_max(x, v_set1(-87.3f)), v_set1(88.0f));
    V16 n = v_round(v_mul(x, v_set1(1.44269504088896341f)));
    V16 r = v_fma(n, v_set1(-0.693147182464599609375f), x);
    r = v_fma(n, v_set1(1.9046542999577e-09f), r);
    V16 p = v_set1(1.0f / 5040);
    p = v_fma(p, r, v_set1(1.0f / 720));
    p = v_fma(p, r, v_set1(1.0f / 120));
    p = v_fma(p, r, v_set1(1.0f / 24));
    p = v_fma(p, r, v_set1(1.0f / 6));
    p = v_fma(p, r, v_set1(0.5f));
    p = v_fma(p, r, v_set1(1.0f));
    p = v_fma(p, r, v_set1(1.0f));
    return v_mul(p, v_pow2i(n));
}

/* gelu_new(u) = 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3))), with
 * tanh(z) = 1 - 2 / (exp(2z) + 1) and |z| clamped to 9, past which tanh is
 * 1 in float32. */
KERNEL_INLINE V16 v_gelu(V16 u) {
    const V16 one = v_set1(1.0f);
    V16 u3 = v_mul(v_mul(u, u), u);
    V16 z = v_mul(v_set1(0.7978845608028654f), v_add(u, v_mul(v_set1(0.044715f), u3)));
    z = v_min(v_max(z, v_set1(-9.0f)), v_set1(9.0f));
    V16 e = v_exp(v_add(z, z));
    V16 t = v_sub(one, v_div(v_set1(2.0f), v_add(e, one)));
    return v_mul(v_mul(v_set1(0.5f), u), v_add(one, t));
}

/* ---- matrix products ---------------------------------------------------- */

/* 16 weights of column k of a float-like panel, as float32. */
KERNEL_INLINE V16 load_weights(DType t, const void *panel, size_t k) {
    if (t == DTYPE_F16) return v_load_f16((const uint16_t *)panel + k * PANEL_ROWS);
    if (t == DTYPE_BF16) return v_load_bf16((const uint16_t *)panel + k * PANEL_ROWS);
    return v_load((const float *)panel + k * PANEL_ROWS);
}

/* Applies the epilogue to one result and stores it. */
KERNEL_INLINE void store_result(const MatmulArgs *a, size_t m, size_t panel, V16 acc) {
    size_t n0 = panel * PANEL_ROWS, rows = a->w->rows;
    size_t valid = rows - n0 < PANEL_ROWS ? rows - n0 : PANEL_ROWS;
    float *y = a->y + m * a->y_stride + n0;
    if (a->bias) acc = v_add(acc, valid == PANEL_ROWS ? v_load(a->bias + n0) : v_load_part(a->bias + n0, valid));
    if (a->epilogue == EPI_GELU) acc = v_gelu(acc);
    if (a->epilogue == EPI_ADD) acc = v_add(valid == PANEL_ROWS ? v_load(y) : v_load_part(y, valid), acc);
    if (valid == PANEL_ROWS) v_store(y, acc);
    else v_store_part(y, acc, valid);
}

/* Stores the mr x np results of a tile, acc[i][p] at buf[(i * np + p) *
 * 16], through the epilogue.  Out of line, so that the epilogue (GELU
 * above all) is compiled once rather than in every tile shape. */
static KERNEL_NOINLINE void store_tile(const MatmulArgs *a, size_t m0, size_t p0, int mr, int np, const float *buf) {
    for (int i = 0; i < mr; i++)
        for (int p = 0; p < np; p++)
            store_result(a, m0 + (size_t)i, p0 + (size_t)p, v_load(buf + ((size_t)i * (size_t)np + (size_t)p) * 16));
}

/* mr input rows x np panels of a float-like matrix, from row m0 and panel
 * p0.  Each output is the chain acc = fma(x[k], w[k], acc), k = 0, 1, ...
 * With `transposed` the inputs come from a->xt, where the mr values of one
 * k lie side by side, and the weights, streamed from memory in one panel,
 * are prefetched. */
KERNEL_INLINE void tile_float(DType t, int mr, int np, bool transposed, const MatmulArgs *a, size_t m0, size_t p0) {
    const size_t K = a->w->cols;
    const size_t panel_elems = K * PANEL_ROWS;
    const size_t esize = t == DTYPE_F32 ? 4 : 2;
    const char *w0 = (const char *)a->w->data + p0 * panel_elems * esize;
    const float *x = transposed ? a->xt + m0 : a->x + m0 * a->x_stride;
    const size_t x_row = transposed ? 1 : a->x_stride, x_col = transposed ? a->n_x : 1;
    V16 acc[MM_ROWS_MAX][MM_NP1];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) acc[i][p] = v_zero();
    for (size_t k = 0; k < K; k++) {
        V16 w[MM_NP1];
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) w[p] = load_weights(t, w0 + (size_t)p * panel_elems * esize, k);
        if ((k * esize * PANEL_ROWS) % 64 == 0) { /* a new cache line */
            if (transposed) v_prefetch(w0 + k * esize * PANEL_ROWS + WIDE_PREFETCH);
            /* One row streams its panels from memory; 16-bit weights need
             * the help (f32 runs as fast without). */
            if (mr == 1 && esize == 2)
                for (int p = 0; p < np; p++)
                    v_prefetch(w0 + (size_t)p * panel_elems * esize + k * esize * PANEL_ROWS + ROW_PREFETCH);
        }
#pragma GCC unroll 16
        for (int i = 0; i < mr; i++) {
            V16 xb = v_set1(x[(size_t)i * x_row + k * x_col]);
#pragma GCC unroll 8
            for (int p = 0; p < np; p++) acc[i][p] = v_fma(xb, w[p], acc[i][p]);
        }
    }
    float buf[MM_TILE_MAX * 16];
#pragma GCC unroll 16
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) v_store(buf + (i * np + p) * 16, acc[i][p]);
    store_tile(a, m0, p0, mr, np, buf);
}

/* The same for q8_0 (kernels.h): per block, exact integer sums of the two
 * quantized inputs against the quants, then the chain over the blocks
 * acc = fma((float)s1, d_w * d1, acc), acc = fma((float)s2, d_w * d2, acc). */
KERNEL_INLINE void tile_q8(int mr, int np, const MatmulArgs *a, size_t m0, size_t p0) {
    const size_t K = a->w->cols, n_blocks = K / Q8_BLOCK;
    const uint8_t *w0 = (const uint8_t *)a->w->data + p0 * n_blocks * Q8_BLOCK_BYTES;
    const uint8_t *xq = a->xq + m0 * 2 * K;
    const float *xd = a->xd + m0 * 2 * n_blocks;
    V16 acc[MM_MR_Q8][MM_NP_Q8_MAX];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) acc[i][p] = v_zero();
    for (size_t b = 0; b < n_blocks; b++) {
        const uint8_t *blk[MM_NP_Q8_MAX];
        V16I s1[MM_MR_Q8][MM_NP_Q8_MAX], s2[MM_MR_Q8][MM_NP_Q8_MAX], bias[MM_NP_Q8_MAX];
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) {
            blk[p] = w0 + ((size_t)p * n_blocks + b) * Q8_BLOCK_BYTES;
            bias[p] = vi_zero();
        }
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
            for (int p = 0; p < np; p++) s1[i][p] = s2[i][p] = vi_zero();
#pragma GCC unroll 8
        for (size_t g = 0; g < Q8_BLOCK / Q8_GROUP; g++) {
            Q16 w[MM_NP_Q8_MAX];
#pragma GCC unroll 8
            for (int p = 0; p < np; p++) {
                w[p] = q16_load(blk[p] + PANEL_ROWS * 2 + g * Q8_GROUP * PANEL_ROWS);
                /* One row streams the quants from memory: the hardware
                 * prefetcher alone leaves a quarter of the bandwidth unused. */
                if (mr == 1) v_prefetch(blk[p] + PANEL_ROWS * 2 + g * Q8_GROUP * PANEL_ROWS + ROW_PREFETCH_Q8);
                bias[p] = vi_dot_bias(bias[p], w[p]);
            }
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) {
                const uint8_t *q = xq + (size_t)i * 2 * K + b * Q8_BLOCK + g * Q8_GROUP;
                X4 x1 = x4_load(q), x2 = x4_load(q + K);
#pragma GCC unroll 8
                for (int p = 0; p < np; p++) {
                    s1[i][p] = vi_dot(s1[i][p], x1, w[p]);
                    s2[i][p] = vi_dot(s2[i][p], x2, w[p]);
                }
            }
        }
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) {
            V16 dw = v_load_f16((const uint16_t *)(const void *)blk[p]);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) {
                const float *d = xd + (size_t)i * 2 * n_blocks + 2 * b;
                acc[i][p] = v_fma(vi_to_float(s1[i][p], bias[p]), v_mul(dw, v_set1(d[0])), acc[i][p]);
                acc[i][p] = v_fma(vi_to_float(s2[i][p], bias[p]), v_mul(dw, v_set1(d[1])), acc[i][p]);
            }
        }
    }
    float buf[MM_TILE_MAX * 16];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) v_store(buf + (i * np + p) * 16, acc[i][p]);
    store_tile(a, m0, p0, mr, np, buf);
}

/* All rows for np panels from p: tiles of MR rows, then one tile of the
 * rows left over (a switch, so that every tile has constant bounds). */
#define TILE_ROWS(TILE, MR, np, a, p)                                                      \
    do {                                                                                   \
        size_t m_ = 0;                                                                     \
        for (; m_ + (MR) <= (a)->n_x; m_ += (MR)) TILE(MR, np, a, m_, p);                  \
        switch ((a)->n_x - m_) {                                                           \
        case 1: TILE(1, np, a, m_, p); break;                                              \
        case 2: if ((MR) > 2) TILE((MR) > 2 ? 2 : 1, np, a, m_, p); break;                 \
        case 3: if ((MR) > 3) TILE((MR) > 3 ? 3 : 1, np, a, m_, p); break;                 \
        case 4: if ((MR) > 4) TILE((MR) > 4 ? 4 : 1, np, a, m_, p); break;                 \
        case 5: if ((MR) > 5) TILE((MR) > 5 ? 5 : 1, np, a, m_, p); break;                 \
        default: break;                                                                    \
        }                                                                                  \
    } while (0)

/* All rows for one panel in tiles of WIDE, WIDE/2, ..., 1 rows, reading
 * the inputs transposed: a batch of decoding steps reads each weight from
 * memory once, in one stream per thread, with enough arithmetic on it to
 * keep the FMA units busy. */
#define TILE_WIDE(TILE, WIDE, a, p)                                                        \
    do {                                                                                   \
        size_t m_ = 0;                                                                     \
        for (; m_ + (WIDE) <= (a)->n_x; m_ += (WIDE)) TILE(WIDE, 1, a, m_, p);             \
        if ((WIDE) >= 16 && (a)->n_x - m_ >= 8) {                                          \
            TILE((WIDE) >= 16 ? 8 : 1, 1, a, m_, p);                                       \
            m_ += 8;                                                                       \
        }                                                                                  \
        if ((WIDE) >= 8 && (a)->n_x - m_ >= 4) {                                           \
            TILE((WIDE) >= 8 ? 4 : 1, 1, a, m_, p);                                        \
            m_ += 4;                                                                       \
        }                                                                                  \
        if ((WIDE) >= 4 && (a)->n_x - m_ >= 2) {                                           \
            TILE((WIDE) >= 4 ? 2 : 1, 1, a, m_, p);                                        \
            m_ += 2;                                                                       \
        }                                                                                  \
        if (m_ < (a)->n_x) TILE(1, 1, a, m_, p);                                           \
    } while (0)

/* One dtype: a single input row streams wide tiles of NP1 panels (a
 * matrix-vector product reads each weight once); up to WIDE rows (0: none)
 * go panel by panel through TILE_WIDE; more rows take tiles of MR x NP,
 * reusing each loaded weight MR times from the caches.  Panels short of a
 * whole tile, at the end of a matrix, go one row at a time. */
#define DEFINE_MATMUL(fn, TILE, MR, NP, NP1, WIDE)                                         \
    static void fn(const MatmulArgs *a, size_t p_begin, size_t p_end) {                    \
        size_t p = p_begin;                                                                \
        if (a->n_x == 1) {                                                                 \
            for (; p + (NP1) <= p_end; p += (NP1)) TILE(1, NP1, a, 0, p);                  \
        } else if (a->n_x <= (WIDE)) {                                                     \
            for (; p < p_end; p++) TILE_WIDE(TILE##_T, (WIDE) > 0 ? (WIDE) : 1, a, p);     \
        } else {                                                                           \
            for (; p + (NP) <= p_end; p += (NP)) TILE_ROWS(TILE, MR, NP, a, p);            \
        }                                                                                  \
        for (; p < p_end; p++)                                                             \
            for (size_t m = 0; m < a->n_x; m++) TILE(1, 1, a, m, p);                       \
    }

#define TILE_F32(mr, np, a, m, p) tile_float(DTYPE_F32, mr, np, false, a, m, p)
#define TILE_F16(mr, np, a, m, p) tile_float(DTYPE_F16, mr, np, false, a, m, p)
#define TILE_BF16(mr, np, a, m, p) tile_float(DTYPE_BF16, mr, np, false, a, m, p)
#define TILE_F32_T(mr, np, a, m, p) tile_float(DTYPE_F32, mr, np, true, a, m, p)
#define TILE_F16_T(mr, np, a, m, p) tile_float(DTYPE_F16, mr, np, true, a, m, p)
#define TILE_BF16_T(mr, np, a, m, p) tile_float(DTYPE_BF16, mr, np, true, a, m, p)
#define TILE_Q8(mr, np, a, m, p) tile_q8(mr, np, a, m, p)
#define TILE_Q8_T TILE_Q8 /* never used: q8_0 has no wide path */
DEFINE_MATMUL(matmul_f32, TILE_F32, MM_MR, MM_NP, MM_NP1, MM_WIDE)
DEFINE_MATMUL(matmul_f16, TILE_F16, MM_MR, MM_NP, MM_NP1, MM_WIDE)
DEFINE_MATMUL(matmul_bf16, TILE_BF16, MM_MR, MM_NP, MM_NP1, MM_WIDE)
DEFINE_MATMUL(matmul_q8, TILE_Q8, MM_MR_Q8, MM_NP_Q8, MM_NP1_Q8, 0)

static void matmul(const MatmulArgs *a, size_t p_begin, size_t p_end) {
    switch (a->w->dtype) {
    case DTYPE_F32: matmul_f32(a, p_begin, p_end); break;
    case DTYPE_F16: matmul_f16(a, p_begin, p_end); break;
    case DTYPE_BF16: matmul_bf16(a, p_begin, p_end); break;
    case DTYPE_Q8_0: matmul_q8(a, p_begin, p_end); break;
    default: break;
    }
}

/* The input of a wide product, transposed 16 x 16 at a time. */
static void transpose(float *xt, const float *x, size_t x_stride, size_t n_x, size_t k_begin, size_t k_end) {
    for (size_t k0 = k_begin; k0 < k_end; k0 += 16) {
        const size_t width = k_end - k0 < 16 ? k_end - k0 : 16;
        V16 r[16];
        for (size_t m = 0; m < 16; m++) {
            const float *row = x + m * x_stride + k0;
            r[m] = m >= n_x ? v_zero() : width == 16 ? v_load(row) : v_load_part(row, width);
        }
        v_transpose16(r);
        for (size_t j = 0; j < width; j++) {
            float *out = xt + (k0 + j) * n_x;
            if (n_x == 16) v_store(out, r[j]);
            else v_store_part(out, r[j], n_x);
        }
    }
}

/* Quantizes the 32 values x0, x1 to xq[0..32) (plus 128) with the scale
 * *d, as kernels.h says; returns the quants as floats. */
KERNEL_INLINE void quantize_block(uint8_t *xq, float *d, V16 x0, V16 x1, V16 *q0, V16 *q1) {
    const float amax = v_reduce_max(v_max(v_abs(x0), v_abs(x1)));
    const bool zero = !(amax >= 0x1p-64f); /* tiny, or NaN: all quants +0 */
    const V16 inv = v_set1(zero ? 0.0f : 127.0f / amax);
    const V16 lo = v_set1(-127.0f), hi = v_set1(127.0f);
    /* v_max and v_min return their second operand for NaN: finite. */
    *q0 = v_min(v_max(v_round(v_mul(x0, inv)), lo), hi);
    *q1 = v_min(v_max(v_round(v_mul(x1, inv)), lo), hi);
    v_store_q8(xq, *q0);
    v_store_q8(xq + 16, *q1);
    *d = zero ? 0.0f : amax / 127.0f;
}

/* q8_0 input quantization (kernels.h): each block once, then what it
 * left over once more. */
static void quantize(uint8_t *xq, float *xd, const float *x, size_t n) {
    for (size_t b = 0; b < n / Q8_BLOCK; b++) {
        const V16 x0 = v_load(x + b * Q8_BLOCK), x1 = v_load(x + b * Q8_BLOCK + 16);
        V16 q0, q1;
        quantize_block(xq + b * Q8_BLOCK, &xd[2 * b], x0, x1, &q0, &q1);
        const V16 minus_d = v_set1(-xd[2 * b]);
        const V16 r0 = v_fma(q0, minus_d, x0), r1 = v_fma(q1, minus_d, x1);
        quantize_block(xq + n + b * Q8_BLOCK, &xd[2 * b + 1], r0, r1, &q0, &q1);
    }
}

/* ---- LayerNorm ---------------------------------------------------------- */

/* Sum of x[0..n) in the 16-lane order of kernels.h. */
static float lane_sum(const float *x, size_t n) {
    V16 s = v_zero();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) s = v_add(s, v_load(x + i));
    if (i < n) s = v_add(s, v_load_part(x + i, n - i));
    return v_reduce_add(s);
}

static void layernorm(float *out, const float *x, const float *w, const float *b, size_t n, float eps) {
    const float mean = lane_sum(x, n) / (float)n;
    const V16 mv = v_set1(mean);
    V16 q = v_zero();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        V16 d = v_sub(v_load(x + i), mv);
        q = v_fma(d, d, q);
    }
    if (i < n) {
        float d[16] = {0}; /* missing elements count as +0 */
        for (size_t j = 0; i + j < n; j++) d[j] = x[i + j] - mean;
        V16 dv = v_load(d);
        q = v_fma(dv, dv, q);
    }
    const float var = v_reduce_add(q) / (float)n;
    const V16 rstd = v_set1(1.0f / sqrtf(var + eps));
    for (i = 0; i + 16 <= n; i += 16)
        v_store(out + i, v_fma(v_mul(v_sub(v_load(x + i), mv), rstd), v_load(w + i), v_load(b + i)));
    if (i < n) {
        size_t r = n - i;
        V16 y = v_fma(v_mul(v_sub(v_load_part(x + i, r), mv), rstd), v_load_part(w + i, r), v_load_part(b + i, r));
        v_store_part(out + i, y, r);
    }
}

/* ---- attention ---------------------------------------------------------- */


/* Scores of tq queries from q0 against tb key blocks from block k0: the
 * chains over d, then times the scale. */
KERNEL_INLINE void score_tile(int tq, int tb, const AttentionArgs *a, size_t q0, size_t k0, size_t stride) {
    const size_t hd = a->head_dim;
    const float *q = a->q + q0 * a->q_stride, *kt = a->kt + k0 * 16 * hd;
    V16 acc[AT_CHAINS][AT_CHAINS];
#pragma GCC unroll 8
    for (int i = 0; i < tq; i++)
#pragma GCC unroll 8
        for (int b = 0; b < tb; b++) acc[i][b] = v_zero();
    for (size_t d = 0; d < hd; d++) {
        V16 k[AT_CHAINS];
#pragma GCC unroll 8
        for (int b = 0; b < tb; b++) k[b] = v_load(kt + (size_t)b * 16 * hd + d * 16);
#pragma GCC unroll 8
        for (int i = 0; i < tq; i++) {
            V16 qb = v_set1(q[(size_t)i * a->q_stride + d]);
#pragma GCC unroll 8
            for (int b = 0; b < tb; b++) acc[i][b] = v_fma(qb, k[b], acc[i][b]);
        }
    }
    const V16 scale = v_set1(a->scale);
#pragma GCC unroll 8
    for (int i = 0; i < tq; i++)
#pragma GCC unroll 8
        for (int b = 0; b < tb; b++)
            v_store(a->scores + (q0 + (size_t)i) * stride + (k0 + (size_t)b) * 16, v_mul(acc[i][b], scale));
}

/* Scores of every query against every key block the last query sees. */
static void attention_scores(const AttentionArgs *a, size_t stride) {
    const size_t n_blocks = stride / 16;
    if (a->n_q == AT_QUERIES && AT_QUERIES > 1) {
        const int tb = AT_CHAINS / AT_QUERIES;
        size_t k = 0;
        for (; k + (size_t)tb <= n_blocks; k += (size_t)tb) score_tile(AT_QUERIES, tb, a, 0, k, stride);
        for (; k < n_blocks; k++) score_tile(AT_QUERIES, 1, a, 0, k, stride);
        return;
    }
    for (size_t i = 0; i < a->n_q; i++) {
        size_t k = 0;
        for (; k + AT_CHAINS <= n_blocks; k += AT_CHAINS) score_tile(1, AT_CHAINS, a, i, k, stride);
        /* The blocks left, side by side too (a short context has no more). */
        switch (n_blocks - k) {
        case 1: score_tile(1, 1, a, i, k, stride); break;
        case 2: score_tile(1, AT_CHAINS > 2 ? 2 : 1, a, i, k, stride); break;
        case 3: score_tile(1, AT_CHAINS > 3 ? 3 : 1, a, i, k, stride); break;
        case 4: score_tile(1, AT_CHAINS > 4 ? 4 : 1, a, i, k, stride); break;
        case 5: score_tile(1, AT_CHAINS > 5 ? 5 : 1, a, i, k, stride); break;
        case 6: score_tile(1, AT_CHAINS > 6 ? 6 : 1, a, i, k, stride); break;
        case 7: score_tile(1, AT_CHAINS > 7 ? 7 : 1, a, i, k, stride); break;
        default: break;
        }
    }
}

/* Scores sc[0..n) -> softmax weights, over round_up(n, 16) lanes. */
static void softmax_row(float *sc, size_t n) {
    const size_t padded = (n + 15) / 16 * 16;
    for (size_t s = n; s < padded; s++) sc[s] = -INFINITY;
    V16 mx = v_set1(-INFINITY);
    for (size_t s0 = 0; s0 < padded; s0 += 16) mx = v_max(mx, v_load(sc + s0));
    const V16 max = v_set1(v_reduce_max(mx));
    for (size_t s0 = 0; s0 < padded; s0 += 16) v_store(sc + s0, v_exp(v_sub(v_load(sc + s0), max)));
    for (size_t s = n; s < padded; s++) sc[s] = 0.0f;
    const V16 inv = v_set1(1.0f / lane_sum(sc, padded));
    for (size_t s0 = 0; s0 < padded; s0 += 16) v_store(sc + s0, v_mul(v_load(sc + s0), inv));
}

/* One key s of the weighted values: queries i0 .. tq-1 of the tile add
 * p_i[s] v_s to their chains. */
KERNEL_INLINE void value_step(int tq, int i0, const AttentionArgs *a, const float *sc, size_t s, size_t d0, size_t full,
                              size_t rest, size_t stride, V16 acc[AT_QUERIES][AT_VECS]) {
    const float *v = a->v + s * a->v_stride + d0;
    const size_t nv = full + (rest != 0);
    V16 vv[AT_VECS];
#pragma GCC unroll 8
    for (int j = 0; j < AT_VECS; j++)
        vv[j] = (size_t)j < full ? v_load(v + 16 * j) : (size_t)j < nv ? v_load_part(v + 16 * j, rest) : v_zero();
#pragma GCC unroll 8
    for (int i = i0; i < tq; i++) {
        const V16 p = v_set1(sc[(size_t)i * stride + s]);
#pragma GCC unroll 8
        for (int j = 0; j < AT_VECS; j++)
            if ((size_t)j < nv) acc[i][j] = v_fma(p, vv[j], acc[i][j]);
    }
}

/* Weighted values of tq queries from q0, dimensions d0 .. d0 + width
 * (width <= 16 * AT_VECS): chains over s.  Query i stops at its own number
 * of keys, n_keys + q0 + i. */
KERNEL_INLINE void value_tile(int tq, const AttentionArgs *a, size_t q0, size_t d0, size_t width, size_t stride) {
    const size_t full = width / 16, rest = width % 16;
    const size_t n0 = a->n_keys + q0; /* keys every query of the tile sees */
    const float *sc = a->scores + q0 * stride;
    V16 acc[AT_QUERIES][AT_VECS];
#pragma GCC unroll 8
    for (int i = 0; i < tq; i++)
#pragma GCC unroll 8
        for (int j = 0; j < AT_VECS; j++) acc[i][j] = v_zero();
    /* Keys all tq queries see, then the few only the later ones do. */
    for (size_t s = 0; s < n0; s++) value_step(tq, 0, a, sc, s, d0, full, rest, stride, acc);
    for (int t = 1; t < tq; t++) value_step(tq, t, a, sc, n0 + (size_t)t - 1, d0, full, rest, stride, acc);
#pragma GCC unroll 8
    for (int i = 0; i < tq; i++) {
        float *out = a->out + (q0 + (size_t)i) * a->out_stride + d0;
#pragma GCC unroll 8
        for (int j = 0; j < AT_VECS; j++) {
            if ((size_t)j < full) v_store(out + 16 * j, acc[i][j]);
            else if ((size_t)j == full && rest) v_store_part(out + 16 * j, acc[i][j], rest);
        }
    }
}

static void attention(const AttentionArgs *a) {
    const size_t hd = a->head_dim, n_last = a->n_keys + a->n_q - 1, stride = (n_last + 15) / 16 * 16;
    attention_scores(a, stride);
    for (size_t i = 0; i < a->n_q; i++) softmax_row(a->scores + i * stride, a->n_keys + i);
    for (size_t d0 = 0; d0 < hd; d0 += 16 * AT_VECS) {
        size_t width = hd - d0 < 16 * AT_VECS ? hd - d0 : 16 * AT_VECS;
        if (a->n_q == AT_QUERIES) value_tile(AT_QUERIES, a, 0, d0, width, stride);
        else
            for (size_t i = 0; i < a->n_q; i++) value_tile(1, a, i, d0, width, stride);
    }
}

const KernelSet KERNEL_SET_NAME = {
    .name = KERNEL_SET_LABEL,
    .tile_panels = MM_NP1,
    .wide_rows = MM_WIDE,
    .attention_queries = AT_QUERIES,
    .matmul = matmul,
    .transpose = transpose,
    .quantize = quantize,
    .layernorm = layernorm,
    .attention = attention,
};
