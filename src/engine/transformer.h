/* transformer.h - the GPT-2 forward pass over a batch of token positions.
 *
 * Owns the activations, the key/value caches and the order of operations of
 * the network:
 *
 *   x = wte[token] + wpe[pos]
 *   for each layer:  x += proj(attention(LN1(x)));  x += mlp(LN2(x))
 *   logits = LN_f(x) . wte^T                      (the tied output head)
 *
 * One call evaluates a Batch: any mix of rows, each a (sequence, position,
 * token).  A prompt is many rows of one sequence; a decoding step of a
 * batch of completions is one row per sequence.  Every row's result is the
 * same whatever else is in the batch and however many threads run it (see
 * kernels.h), so batching and threading never change an output.
 *
 * Each sequence has its own KV cache of n_ctx positions.  Evaluating
 * position p of a sequence needs positions 0..p-1 of it evaluated before
 * (or earlier in the same batch); rewriting position p forgets the
 * positions after it.
 */
#ifndef GPT2_TRANSFORMER_H
#define GPT2_TRANSFORMER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "model.h"
#include "threadpool.h"

typedef struct {
    size_t n;             /* rows */
    const int32_t *token; /* [n] token ids */
    const uint32_t *pos;  /* [n] position of each token in its sequence */
    const uint32_t *seq;  /* [n] sequence (KV cache) of each row */
    const bool *logits;   /* [n] rows whose logits are wanted, in order; NULL: only the last row */
} Batch;

/* The keys and values of one sequence, in chunks of positions that
 * double in length (kv_row in kernels.h), so that its memory fills in
 * order as its positions do; it is held in 2 MiB pages where the system
 * allows, which the virtual machines this was measured on bring in many
 * times cheaper than 4 KiB ones.  A slice is one head of one layer, lh =
 * layer * n_head + head; gpt2_kv_offset says where its positions lie. */
typedef struct {
    float *kt;                /* [n_ctx16 * n_layer * n_head][head_dim]: keys, blocks of 16 positions [head_dim][16] */
    float *v;                 /* [n_ctx16 * n_layer * n_head][head_dim]: values */
    uint32_t len;             /* positions 0 .. len-1 hold valid keys and values */
    uint32_t populated;       /* positions 0 .. populated-1 need no pages brought in (see populate_cache) */
    atomic_uint prepopulated; /* positions 0 .. prepopulated-1 were too, by gpt2_transformer_populate_first */
    uint32_t base_len;        /* positions 0 .. base_len-1 (a multiple of 16, or 0) are read from ... */
    uint32_t base;            /* ... sequence `base`, whose cache they are borrowed from (see copy_prefix) */
    int32_t *tokens;          /* [n_ctx] the token at each of those positions */
} KVCache;

/* Scratch for the rows of one forward call. */
typedef struct {
    float *x;            /* [max_rows][C] residual stream */
    float *xn;           /* [max_rows][C] LayerNorm output */
    float *qkv;          /* [max_rows][3C] queries, keys, values */
    float *att;          /* [max_rows][C] attention output, heads side by side */
    float *fc;           /* [max_rows][4C] MLP hidden layer */
    float *scores;       /* [n_threads][attention_queries * n_ctx16] attention weights, per thread */
    float *xt;           /* [4C][wide_rows] a matrix input of a few rows, transposed */
    uint8_t *xq;         /* [max_rows][Q8_TERMS][4C] a matrix input quantized for q8_0 weights (kernels.h) */
    float *xd;           /* [max_rows][4C / 32] its blocks' units */
    float *widened;      /* [n_threads][widen_panels * 16 * widened_cols] weights widened (kernels.h) */
    size_t widened_cols; /* 4C where a product widens (16-bit weights, or q8_0 on a set with q8_scratch), else 0 */
    float *logits;       /* [n_seq][n_vocab] where the generation loop has a step's wanted rows' logits written */
    uint32_t *group_row; /* [max_rows] first row of each attention group */
    uint32_t *group_len; /* [max_rows] its rows: one sequence, consecutive positions */
    size_t n_groups;
} RunState;

/* What an inspection keeps of the rows of one sequence, filled after each
 * layer while a Capture is set (see capture.c).  Only rows of sequence
 * `seq` at positions below n are kept; a NULL array is not filled. */
typedef struct {
    uint32_t seq;
    uint32_t n;       /* positions 0 .. n-1 */
    uint32_t window;  /* w: 1 .. n */
    float *residual;  /* [n_layer][n][C] the residual stream after each layer */
    float *attention; /* [n_layer][n_head][w][w] weights among the last w positions, [query][key] */
    float *last;      /* [n_layer][n_head][n] weights of query n-1 over every key */
    float *distance;  /* [n_layer][n_head][n] sum over keys k of p(q, k) (q - k), for each query q */
    double *scratch;  /* [threads][n_ctx] */
} Capture;

typedef struct {
    const Model *model;
    const KernelSet *kernels;
    StreamHints stream; /* how the kernels prefetch: this CPU's (gpt2_kernels_stream_hints) unless set after building */
    ThreadPool *pool;
    size_t max_rows; /* rows one forward call may hold */
    size_t n_seq;    /* sequences, each with a KV cache */
    size_t n_ctx16;  /* n_ctx rounded up to 16 */
    size_t head_dim;
    size_t n_slices; /* n_layer * n_head */
    size_t kv_size;  /* floats of a cache's kt (and of its v): n_ctx16 * n_layer * n_embd */
    KVCache *caches; /* [n_seq] */
    RunState state;
    Capture *capture; /* NULL (always, but while inspecting): nothing is kept */
} Transformer;

/* Where position p of slice lh lies, in floats from the start of a
 * cache's kt and of its v alike: its row of values, and for p a multiple
 * of 16 its block of keys. */
static inline size_t gpt2_kv_offset(const Transformer *t, size_t lh, size_t p) {
    return kv_row(t->n_slices, t->n_ctx16, lh, p) * t->head_dim;
}

/* Key p of slice lh in kt: its dimension 0 (its dimension d is 16 * d
 * floats further). */
static inline size_t gpt2_kv_key(const Transformer *t, size_t lh, size_t p) {
    return gpt2_kv_offset(t, lh, p / 16 * 16) + p % 16;
}

/* Sets up a transformer over model for n_seq sequences and up to max_rows
 * rows per call, running on n_threads threads with the given kernels.  The
 * caches are reserved, not touched: memory is used as positions fill
 * (gpt2_transformer_populate_first brings in sequence 0's first 16).
 * Returns false with a reason in err. */
bool gpt2_transformer_build(Transformer *t, const Model *model, const KernelSet *kernels, size_t n_seq, size_t max_rows,
                            int n_threads, char *err, size_t errsz);
void gpt2_transformer_free(Transformer *t);

/* Evaluates batch b, writing the logits of the wanted rows to
 * logits[k][n_vocab] in row order.  Returns false (evaluating nothing) with
 * a reason in err when a row is out of range: a token >= n_vocab, a
 * sequence >= n_seq, a position >= n_ctx, or a position beyond what its
 * sequence holds. */
bool gpt2_transformer_forward(Transformer *t, const Batch *b, float *logits, char *err, size_t errsz);

/* The output head alone: logits[n][n_vocab] = LN_f(x[n][C]) . wte^T, for
 * n <= max_rows rows of a residual stream (the logit lens). */
void gpt2_transformer_head(Transformer *t, const float *x, size_t n, float *logits);

/* Keeps what t->capture asks for of layer `layer` of batch b: called by
 * gpt2_transformer_forward after each layer while a capture is set, when
 * the layer's keys and values are cached and its queries are still in
 * state.qkv. */
void gpt2_capture_layer(Transformer *t, const Batch *b, size_t layer);

/* Brings in, writable, the fresh pages that a first forward pass of a
 * short prompt writes: the first rows of the scratch buffers, the first
 * block of positions of sequence 0's key/value slices (then records them
 * in its prepopulated, so that the pass does not populate them again) and
 * the first row of state.logits.  A page's first write costs a fault, far
 * dearer on a virtual machine than bringing it in here, from another
 * thread, before the pass needs it.  Safe beside a running forward pass
 * (it changes no byte the pass reads); returns early once *stop is set. */
void gpt2_transformer_populate_first(Transformer *t, const atomic_bool *stop);

/* Forgets everything sequence s holds. */
void gpt2_transformer_reset(Transformer *t, size_t s);

/* How many of ids[0..n) sequence s holds at positions 0.. (the length of
 * the common prefix of ids and the tokens it has evaluated). */
size_t gpt2_transformer_match(const Transformer *t, size_t s, const int32_t *ids, size_t n);

/* Makes sequence dst hold the first n_pos positions of sequence src, keys
 * and values bit for bit (and the record of their tokens), so that
 * evaluating dst from position n_pos on gives exactly what evaluating its
 * whole prompt would.  This is how a prompt evaluated once serves many
 * completions (samples of one prompt, a prefix shared by batch lines).
 *
 * The whole blocks of 16 positions are borrowed, not copied: dst reads
 * them from the cache that holds them (src's, or the one src borrows
 * from), so that 16 completions of one long prompt keep one copy of its
 * keys and values.  Whatever is about to overwrite borrowed positions
 * (a row evaluated there, a reset, a copy into the lender) first gives each
 * borrower its own copy of them; so borrowing never changes a result.
 * False when a sequence is out of range or src holds fewer than n_pos
 * positions. */
bool gpt2_transformer_copy_prefix(Transformer *t, size_t dst, size_t src, uint32_t n_pos);

/* Makes sequence s hold every position in its own cache (for a reader of
 * kt and v themselves: the prompt cache's writer, the attention capture). */
void gpt2_transformer_own(Transformer *t, size_t s);

#endif
