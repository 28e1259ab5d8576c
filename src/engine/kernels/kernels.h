/* kernels.h - the numeric kernels: matrix products, LayerNorm, attention.
 *
 * Owns every floating-point loop the forward pass runs, behind one table of
 * function pointers (KernelSet) with four implementations: AVX-512,
 * AVX2 with AVX-VNNI, AVX2 and portable C.  The best one the CPU supports
 * is picked at run time (AVX-512 needs F, BW, VL and VNNI; without them a
 * CPU with AVX-VNNI gets the avxvnni set, which is the AVX2 set with
 * vpdpbusd for q8_0).
 *
 * All four give bit-identical results, and a result never depends on how
 * the work is split between threads or batched, because every kernel fixes
 * the order of its arithmetic:
 *
 *  - A dot product over k is one chain of fused multiply-adds from k = 0
 *    upwards, acc = fma(x[k], w[k], acc), starting at +0.  Tiles, blocking
 *    and threads only change which chains run side by side.
 *  - With q8_0 weights the input row is quantized first, per block of 32
 *    values, to 24-bit integers held as Q8_TERMS (3) int8 digits (quantize
 *    below).  A block with amax = max |v| has the unit u = amax / Q8_QMAX
 *    (Q8_QMAX = 127 * 255^2) and the integers Q nearest v * s (the exact
 *    product, ties to even), s = Q8_QMAX / amax, clamped to -Q8_QMAX..
 *    Q8_QMAX (Q = 0 and u = 0 when amax < 2^-64).  Q is written in
 *    balanced base 255, Q = 255^2 q1 + 255 q2 + q3 with every digit in
 *    -127..127, so that v = u Q to about 23 bits, close to float32's 24
 *    (one int8 would cost q8_0 its accuracy, and two, 16 bits, left logits
 *    of 50 off by 2.6e-3).  A block's products are the exact integer sums
 *    s_t = sum q_t q_w, and the row sum is the chain over the blocks
 *      acc = fma(fma((float)s1, 255^2, (float)(255 s2 + s3)), d_w * u, acc)
 *    where 255 s2 + s3 is exact in int32, and (float) of it, the inner fma
 *    and d_w * u each round once: one scaling per block, where a scale per
 *    digit cost q8_0 prefill a tenth of its speed.  Integer sums are exact
 *    in any order, so each kernel set may form them with its own
 *    instructions.
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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

/* The int8 digits a q8_0 product's input values are quantized to, and the
 * largest integer they hold (above). */
#define Q8_TERMS 3
#define Q8_QMAX 8258175 /* 127 * 255 * 255 */

/* How a kernel prefetches the data it streams once: a product's weights
 * and attention's runs of values.  A hint changes speed only, never a
 * result, but which is faster depends on the CPU.  On AMD's Zen 5 the
 * non-temporal hint decoded q8_0 3-13 % faster than a prefetch into L1
 * (2026-12-05).  On an Intel Xeon (family 6, model 167; 2026-12-07, 124M,
 * 2 threads) it decoded q8_0 at 93 tok/s against 311-320 with the hint
 * into L2, and f16 at 46 against 137-146 (f32 the same, 62-65): there a
 * non-temporal prefetch bypasses L2, so the L2 streamer never sees the
 * stream and the core's few L1 fill buffers alone keep it in flight.  On
 * AMD's Zen 4 (2026-12-07, 124M, 2 threads) decoding q8_0 and f16 ran
 * 11 % and 22 % faster (medians; up to 1.4x and 1.56x with memory at its
 * fastest) with no prefetch instruction in products of one row, while
 * tiles of many rows lost a quarter of their speed without one: hence a
 * hint for each (StreamHints). */
typedef enum {
    STREAM_NONTEMPORAL = 0, /* prefetchnta */
    STREAM_L2 = 1,          /* prefetcht1: into L2 */
    STREAM_NONE = 2         /* no prefetch instruction: the hardware prefetchers alone */
} StreamHint;

typedef struct {
    StreamHint common;  /* tiles of many rows, attention's runs of values */
    StreamHint one_row; /* a matrix product of one input row (decoding one sequence) */
} StreamHints;

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
    const float *bias; /* [w->rows] or NULL */
    const float *x;    /* [n_x][x_stride], uses the first w->cols */
    size_t x_stride;
    float *y; /* [n_x][y_stride], writes the first w->rows */
    size_t y_stride;
    size_t n_x; /* input rows */
    Epilogue epilogue;
    /* 2 <= n_x <= KernelSet.wide_rows and weights not q8_0 only: x
     * transposed, xt[k * n_x + m] = x[m][k]. */
    const float *xt;
    /* q8_0 weights only: x quantized row by row with KernelSet.quantize. */
    const uint8_t *xq; /* [n_x][Q8_TERMS][w->cols] digits + 128: q1, q2, q3 */
    const float *xd;   /* [n_x][w->cols / 32] block units u */
    StreamHint stream; /* how the weights are prefetched */
    /* Scratch of KernelSet.widen_panels * 16 * widened_cols floats, or
     * NULL: many rows against 16-bit weights widen them here first, and a
     * set with q8_scratch its q8_0 inputs and weights. */
    float *widened;
    size_t widened_cols;
} MatmulArgs;

/* One head of causal attention for n_q queries of one sequence at
 * consecutive positions; query i sees keys 0 .. n_keys + i - 1:
 *   out_i[d] = sum_s softmax_s(scale * q_i . k_s) v_s[d].
 * Each query's result is what it would be alone: the scores are chains
 * over d, the softmax is taken over the query's own keys (16-lane sums, as
 * above), and out_i[d] is the chain over s = 0, 1, ... of fma(p_s, v_s[d]).
 * Keys are stored transposed in blocks of 16 positions, so that a query
 * meets 16 keys per vector: key s, dimension d is at
 *   kt[kv_row(n_slices, capacity, slice, s / 16 * 16) * head_dim + d * 16 + s % 16],
 * and value s at v[kv_row(n_slices, capacity, slice, s) * head_dim]: kt and v
 * are a whole sequence's cache, of which this head is one slice.  The
 * whole last block is read, whatever the number of keys.  The first n_base
 * positions (a multiple of 16) are read from kt_base and v_base instead,
 * laid out the same way: a sequence that borrows the cache of a shared
 * prompt. */

/* A sequence's keys (and its values) lie in chunks of positions that
 * double in length, [0, 64), [64, 128), [128, 256), [256, 512) ..., the
 * last cut at the cache's capacity (a multiple of 16); within a chunk
 * slice by slice (a slice is one head of one layer), each slice's
 * positions side by side in rows of head_dim floats.  So a cache's memory
 * fills in order as its positions do, and a long context is read in long
 * runs. */
#define KV_CHUNK 64 /* positions of the first chunk: a power of 2, 16 or more */
_Static_assert(KV_CHUNK >= 16 && (KV_CHUNK & (KV_CHUNK - 1)) == 0, "chunks start at powers of 2");

/* The first position of the chunk holding position p (from KV_CHUNK on,
 * the highest power of 2 not above p), and where it ends. */
static inline size_t kv_chunk_start(size_t p) {
    if (p < KV_CHUNK) return 0;
#if defined(__GNUC__) || defined(__clang__)
    return (size_t)1 << (63 - __builtin_clzll((unsigned long long)p));
#else
    size_t start = KV_CHUNK;
    while (start <= p / 2) start *= 2;
    return start;
#endif
}

static inline size_t kv_chunk_end(size_t capacity, size_t p) {
    const size_t start = kv_chunk_start(p), len = start ? start : KV_CHUNK;
    return len < capacity - start ? start + len : capacity;
}

/* The row (of head_dim floats) where position p of slice `slice` lies. */
static inline size_t kv_row(size_t n_slices, size_t capacity, size_t slice, size_t p) {
    const size_t start = kv_chunk_start(p), len = kv_chunk_end(capacity, p) - start;
    return start * n_slices + slice * len + (p - start);
}

typedef struct {
    const float *q; /* [n_q][q_stride], head_dim used */
    size_t q_stride;
    const float *kt; /* [capacity * n_slices][head_dim]: keys, 16 positions per block */
    const float *v;  /* [capacity * n_slices][head_dim]: values */
    size_t slice, n_slices, capacity;
    const float *kt_base, *v_base; /* positions 0 .. n_base - 1 (kt and v where n_base is 0) */
    size_t n_base;
    size_t n_q;    /* 1 .. KernelSet.attention_queries */
    size_t n_keys; /* keys the first query sees, >= 1 */
    size_t head_dim;
    float scale;
    float *scores; /* scratch: n_q * round_up(n_keys + n_q - 1, 16) floats */
    float *out;    /* [n_q][out_stride], head_dim written */
    size_t out_stride;
    StreamHint stream; /* how runs of values are prefetched */
} AttentionArgs;

typedef struct {
    const char *name;         /* "avx512", "avxvnni", "avx2" or "portable" */
    size_t tile_panels;       /* split a matrix between threads in multiples of this many panels */
    size_t wide_rows;         /* up to this many input rows, a product wants x transposed too */
    size_t attention_queries; /* the most queries one attention call takes */
    size_t widen_panels;      /* panels of 16-bit weights widened at a time (MatmulArgs.widened) */
    size_t widen_rows;        /* from this many input rows on */
    /* q8_0 products want MatmulArgs.widened too, at any number of rows
     * (the avx2 set: its inputs and weights as 16-bit integers there). */
    bool q8_scratch;
    /* Computes the output columns of panels [panel_begin, panel_end) of
     * a->w (rows 16*panel_begin .. 16*panel_end-1). */
    void (*matmul)(const MatmulArgs *a, size_t panel_begin, size_t panel_end);
    /* xt[k * n_x + m] = x[m * x_stride + k] for m < n_x <= wide_rows and
     * k in [k_begin, k_end): the transposed input of a wide product. */
    void (*transpose)(float *xt, const float *x, size_t x_stride, size_t n_x, size_t k_begin, size_t k_end);
    /* Quantizes x[0..n) (n a multiple of 32) for q8_0 weights, as above:
     * xq[t * n + i] = q_t+1,i + 128 for t < Q8_TERMS, and xd[b] = u of
     * block b. */
    void (*quantize)(uint8_t *xq, float *xd, const float *x, size_t n);
    /* out[i] = (x[i] - mean) / sqrt(var + eps) * w[i] + b[i], biased var. */
    void (*layernorm)(float *out, const float *x, const float *w, const float *b, size_t n, float eps);
    void (*attention)(const AttentionArgs *a);
} KernelSet;

extern const KernelSet gpt2_kernels_portable;
extern const KernelSet gpt2_kernels_avx2;    /* name is NULL when not compiled in */
extern const KernelSet gpt2_kernels_avxvnni; /* likewise */
extern const KernelSet gpt2_kernels_avx512;  /* likewise */

/* The fastest set this CPU runs.  `force` ("portable", "avx2", "avxvnni",
 * "avx512") asks for one set, as GPT2_KERNELS does; NULL chooses.  Returns
 * NULL when the forced set is unknown or unsupported here. */
const KernelSet *gpt2_kernels_select(const char *force);

/* The prefetch hints for this CPU: non-temporal on AMD's and Hygon's x86
 * CPUs and on other architectures, into L2 on other x86 CPUs (Intel's);
 * none for a product of one row on AMD's Zen 4 (family 25, with the avx512 set).
 * `force` ("nta", "l2", "none") asks for one hint everywhere
 * (Gpt2Options.prefetch, GPT2_PREFETCH); NULL chooses.  Returns false when
 * `force` names none of them. */
bool gpt2_kernels_stream_hints(const char *force, StreamHints *hints);
/* The hints' name: what `force` calls the hint, "nta", "l2" or "none",
 * where both are the same, else as "nta, none for one row". */
const char *gpt2_kernels_stream_hints_name(StreamHints hints);

#endif
