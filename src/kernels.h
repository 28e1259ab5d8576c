/* kernels.h - the numeric kernels: matrix products, LayerNorm, attention.
 *
 * Owns every floating-point loop the forward pass runs, behind one table of
 * function pointers (KernelSet) with three implementations: AVX-512, AVX2
 * and portable C.  The best one the CPU supports is picked at run time.
 *
 * All three give bit-identical results, and a result never depends on how
 * the work is split between threads or batched, because every kernel fixes
 * the order of its arithmetic:
 *
 *  - A dot product over k is one chain of fused multiply-adds from k = 0
 *    upwards, acc = fma(x[k], w[k], acc), starting at +0.  With q8_0
 *    weights each 32-value block is such a chain, s_b, and the row sum is
 *    the chain acc = fma(s_b, scale_b, acc) over the blocks.
 *  - A sum of n values (LayerNorm statistics, the softmax denominator) is
 *    taken in 16 lanes, lane j adding elements j, j+16, j+32, ... in order,
 *    missing elements counting as +0; the lanes are then combined by the
 *    fixed tree (j + j+8), (j + j+4), (j + j+2), (j + j+1).
 *  - exp and tanh are the same polynomial evaluated the same way
 *    everywhere; nothing calls libm's exp inside a kernel.
 *
 * The portable build compiles with -ffp-contract=off and calls fmaf(), so it
 * rounds exactly where the SIMD code does.
 */
#ifndef GPT2_KERNELS_H
#define GPT2_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* What a matrix product does with each result before storing it. */
typedef enum {
    EPI_STORE = 0, /* y = W x + b */
    EPI_GELU = 1,  /* y = gelu_new(W x + b) */
    EPI_ADD = 2    /* y += W x + b (the residual connection) */
} Epilogue;

/* y[m][n] = epilogue(sum_k W[n][k] x[m][k] + bias[n]) for m < n_x and
 * n < W->rows.  bias may be NULL (treated as 0). */
typedef struct {
    const Matrix *w;
    const float *bias;  /* [w->rows] or NULL */
    const float *x;     /* [n_x][x_stride], uses the first w->cols */
    size_t x_stride;
    float *y;           /* [n_x][y_stride], writes the first w->rows */
    size_t y_stride;
    size_t n_x;         /* input rows */
    Epilogue epilogue;
} MatmulArgs;

/* One head of causal attention for one query:
 *   out[d] = sum_s softmax_s(scale * q . k_s) v_s[d],   s = 0 .. n_keys-1.
 * Keys are stored transposed in blocks of 16 positions, so that a query
 * meets 16 keys per vector: key s, dimension d is
 *   kt[(s / 16) * head_dim * 16 + d * 16 + s % 16].
 * The whole last block is read, whatever n_keys.  Values are rows v[s][d]
 * (row stride v_stride).  scores is scratch of round_up(n_keys, 16) floats. */
typedef struct {
    const float *q;     /* [head_dim] */
    const float *kt;    /* [round_up(n_keys, 16) / 16][head_dim][16] */
    const float *v;     /* [n_keys][v_stride] */
    size_t v_stride;
    size_t n_keys;
    size_t head_dim;
    float scale;
    float *scores;      /* scratch */
    float *out;         /* [head_dim] */
} AttentionArgs;

typedef struct {
    const char *name; /* "avx512", "avx2" or "portable" */
    /* Computes the output columns of panels [panel_begin, panel_end) of
     * a->w (rows 16*panel_begin .. 16*panel_end-1). */
    void (*matmul)(const MatmulArgs *a, size_t panel_begin, size_t panel_end);
    /* out[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i], biased var. */
    void (*layernorm)(float *out, const float *x, const float *w, const float *b, size_t n, float eps);
    void (*attention)(const AttentionArgs *a);
} KernelSet;

extern const KernelSet kernels_portable;
extern const KernelSet kernels_avx2;   /* name is NULL when not compiled in */
extern const KernelSet kernels_avx512; /* likewise */

/* The fastest set this CPU runs.  `force` ("portable", "avx2", "avx512")
 * asks for one set, as GPT2_KERNELS does; NULL chooses.  Returns NULL when
 * the forced set is unknown or unsupported here. */
const KernelSet *kernels_select(const char *force);

/* Reference functions used by the kernels' own tests. */
float kernel_gelu_scalar(float u);
float kernel_exp_scalar(float x);

#endif
