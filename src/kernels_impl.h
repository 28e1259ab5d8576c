/* kernels_impl.h - the kernel bodies, written once against a 16-lane vector.
 *
 * Owns the arithmetic of kernels.h.  It is compiled three times: by
 * kernels_portable.c, kernels_avx2.c and kernels_avx512.c, each of which
 * first includes its vec16_*.h (the V16 type and v_* operations) and defines
 * KERNEL_SET_NAME, KERNEL_SET_LABEL and the tile sizes MM_MR (input rows per
 * tile) and MM_NP (panels per tile).  The tile sizes change speed only:
 * every output is one fixed chain of operations whatever the tiling.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "kernels.h"

#if defined(__GNUC__)
#define KERNEL_INLINE static inline __attribute__((always_inline))
#else
#define KERNEL_INLINE static inline
#endif

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

/* Applies the epilogue to one tile result and stores it. */
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

/* mr input rows x np panels of a float-like matrix, from row m0 and panel
 * p0.  Each output is the chain acc = fma(x[k], w[k], acc), k = 0, 1, ... */
KERNEL_INLINE void tile_float(DType t, int mr, int np, const MatmulArgs *a, size_t m0, size_t p0) {
    const size_t K = a->w->cols;
    const size_t panel_elems = K * PANEL_ROWS;
    const size_t esize = t == DTYPE_F32 ? 4 : 2;
    const char *w0 = (const char *)a->w->data + p0 * panel_elems * esize;
    const float *x = a->x + m0 * a->x_stride;
    V16 acc[MM_MR][MM_NP];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) acc[i][p] = v_zero();
    for (size_t k = 0; k < K; k++) {
        V16 w[MM_NP];
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) w[p] = load_weights(t, w0 + (size_t)p * panel_elems * esize, k);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            V16 xb = v_set1(x[(size_t)i * a->x_stride + k]);
#pragma GCC unroll 8
            for (int p = 0; p < np; p++) acc[i][p] = v_fma(xb, w[p], acc[i][p]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) store_result(a, m0 + (size_t)i, p0 + (size_t)p, acc[i][p]);
}

/* The same for q8_0: a chain per 32-value block, then the chain over the
 * blocks acc = fma(block_sum, scale, acc). */
KERNEL_INLINE void tile_q8(int mr, int np, const MatmulArgs *a, size_t m0, size_t p0) {
    const size_t K = a->w->cols, n_blocks = K / Q8_BLOCK;
    const uint8_t *w0 = (const uint8_t *)a->w->data + p0 * n_blocks * Q8_BLOCK_BYTES;
    const float *x = a->x + m0 * a->x_stride;
    V16 acc[MM_MR][MM_NP];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) acc[i][p] = v_zero();
    for (size_t b = 0; b < n_blocks; b++) {
        const uint8_t *blk[MM_NP];
        V16 s[MM_MR][MM_NP];
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) blk[p] = w0 + ((size_t)p * n_blocks + b) * Q8_BLOCK_BYTES;
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
            for (int p = 0; p < np; p++) s[i][p] = v_zero();
        for (size_t kk = 0; kk < Q8_BLOCK; kk++) {
            V16 w[MM_NP];
#pragma GCC unroll 8
            for (int p = 0; p < np; p++)
                w[p] = v_load_i8((const int8_t *)(blk[p] + PANEL_ROWS * 2) + kk * PANEL_ROWS);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) {
                V16 xb = v_set1(x[(size_t)i * a->x_stride + b * Q8_BLOCK + kk]);
#pragma GCC unroll 8
                for (int p = 0; p < np; p++) s[i][p] = v_fma(xb, w[p], s[i][p]);
            }
        }
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) {
            V16 scale = v_load_f16((const uint16_t *)(const void *)blk[p]);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) acc[i][p] = v_fma(s[i][p], scale, acc[i][p]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int p = 0; p < np; p++) store_result(a, m0 + (size_t)i, p0 + (size_t)p, acc[i][p]);
}

/* One tile shape for one dtype: full tiles first, then the leftover rows
 * one at a time, then the leftover panels one at a time. */
#define DEFINE_MATMUL(fn, TILE)                                                            \
    static void fn(const MatmulArgs *a, size_t p_begin, size_t p_end) {                    \
        size_t p = p_begin;                                                                \
        if (a->n_x == 1) {                                                                 \
            for (; p + MM_NP1 <= p_end; p += MM_NP1) TILE(1, MM_NP1, a, 0, p);            \
            for (; p < p_end; p++) TILE(1, 1, a, 0, p);                                    \
            return;                                                                        \
        }                                                                                  \
        for (; p + MM_NP <= p_end; p += MM_NP) {                                           \
            size_t m = 0;                                                                  \
            for (; m + MM_MR <= a->n_x; m += MM_MR) TILE(MM_MR, MM_NP, a, m, p);           \
            for (; m < a->n_x; m++) TILE(1, MM_NP, a, m, p);                               \
        }                                                                                  \
        for (; p < p_end; p++) {                                                           \
            size_t m = 0;                                                                  \
            for (; m + MM_MR <= a->n_x; m += MM_MR) TILE(MM_MR, 1, a, m, p);               \
            for (; m < a->n_x; m++) TILE(1, 1, a, m, p);                                   \
        }                                                                                  \
    }

#define TILE_F32(mr, np, a, m, p) tile_float(DTYPE_F32, mr, np, a, m, p)
#define TILE_F16(mr, np, a, m, p) tile_float(DTYPE_F16, mr, np, a, m, p)
#define TILE_BF16(mr, np, a, m, p) tile_float(DTYPE_BF16, mr, np, a, m, p)
#define TILE_Q8(mr, np, a, m, p) tile_q8(mr, np, a, m, p)
DEFINE_MATMUL(matmul_f32, TILE_F32)
DEFINE_MATMUL(matmul_f16, TILE_F16)
DEFINE_MATMUL(matmul_bf16, TILE_BF16)
DEFINE_MATMUL(matmul_q8, TILE_Q8)

static void matmul(const MatmulArgs *a, size_t p_begin, size_t p_end) {
    switch (a->w->dtype) {
    case DTYPE_F32: matmul_f32(a, p_begin, p_end); break;
    case DTYPE_F16: matmul_f16(a, p_begin, p_end); break;
    case DTYPE_BF16: matmul_bf16(a, p_begin, p_end); break;
    case DTYPE_Q8_0: matmul_q8(a, p_begin, p_end); break;
    default: break;
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

static void attention(const AttentionArgs *a) {
    const size_t n = a->n_keys, hd = a->head_dim, padded = (n + 15) / 16 * 16;
    float *sc = a->scores;
    const V16 scale = v_set1(a->scale);
    /* Scores, 16 keys at a time: chains over d. */
    for (size_t s0 = 0; s0 < n; s0 += 16) {
        const float *block = a->kt + s0 * hd;
        V16 acc = v_zero();
        for (size_t d = 0; d < hd; d++) acc = v_fma(v_set1(a->q[d]), v_load(block + d * 16), acc);
        v_store(sc + s0, v_mul(acc, scale));
    }
    for (size_t s = n; s < padded; s++) sc[s] = -INFINITY;
    /* Softmax. */
    V16 mx = v_set1(-INFINITY);
    for (size_t s0 = 0; s0 < padded; s0 += 16) mx = v_max(mx, v_load(sc + s0));
    const V16 max = v_set1(v_reduce_max(mx));
    for (size_t s0 = 0; s0 < padded; s0 += 16) v_store(sc + s0, v_exp(v_sub(v_load(sc + s0), max)));
    for (size_t s = n; s < padded; s++) sc[s] = 0.0f;
    const V16 inv = v_set1(1.0f / lane_sum(sc, padded));
    for (size_t s0 = 0; s0 < padded; s0 += 16) v_store(sc + s0, v_mul(v_load(sc + s0), inv));
    /* Weighted values, up to 8 vectors of dimensions at a time: chains over s. */
    for (size_t d0 = 0; d0 < hd; d0 += 8 * 16) {
        size_t width = hd - d0 < 8 * 16 ? hd - d0 : 8 * 16;
        size_t full = width / 16, rest = width % 16;
        V16 acc[9];
        for (size_t j = 0; j <= full; j++) acc[j] = v_zero();
        for (size_t s = 0; s < n; s++) {
            const V16 p = v_set1(sc[s]);
            const float *v = a->v + s * a->v_stride + d0;
            for (size_t j = 0; j < full; j++) acc[j] = v_fma(p, v_load(v + 16 * j), acc[j]);
            if (rest) acc[full] = v_fma(p, v_load_part(v + 16 * full, rest), acc[full]);
        }
        for (size_t j = 0; j < full; j++) v_store(a->out + d0 + 16 * j, acc[j]);
        if (rest) v_store_part(a->out + d0 + 16 * full, acc[full], rest);
    }
}

const KernelSet KERNEL_SET_NAME = {KERNEL_SET_LABEL, matmul, layernorm, attention};
