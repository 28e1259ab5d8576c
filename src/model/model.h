/* model.h - an opened model file: hyperparameters, weights, tokenizer tables.
 *
 * Owns loading and validating a file in the format of model_format.h.  The
 * file is mapped read-only and used in place: every weight pointer below
 * points into the mapping, nothing is copied, so opening costs the same for
 * every model size.  Nothing in the file is trusted: the checksums of the
 * header, the directory and the tokenizer tables are verified before their
 * fields are read, every field, offset and size is checked against the
 * file's real length before it is used, and a damaged file is refused with
 * one line that says what is wrong.
 */
#ifndef GPT2_MODEL_H
#define GPT2_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model_format.h"
#include "tokenizer.h"

typedef struct {
    const float *ln1_w, *ln1_b; /* [C] */
    Matrix qkv;                 /* [3C][C] */
    const float *qkv_b;         /* [3C] */
    Matrix proj;                /* [C][C] */
    const float *proj_b;        /* [C] */
    const float *ln2_w, *ln2_b; /* [C] */
    Matrix fc;                  /* [4C][C] */
    const float *fc_b;          /* [4C] */
    Matrix mlp;                 /* [C][4C] */
    const float *mlp_b;         /* [C] */
} LayerWeights;

typedef struct {
    Matrix wte;                 /* [n_vocab][C], also the output head */
    const float *wpe;           /* [n_ctx][C] row-major */
    const float *lnf_w, *lnf_b; /* [C] */
    LayerWeights *layers;       /* [n_layer], owned */
} TransformerWeights;

typedef struct {
    ModelConfig config;
    TransformerWeights weights;
    TokenizerData vocab;  /* views into tables, a private copy of the file's */
    uint8_t *tables;      /* the vocabulary and merge sections, copied before they are checked */
    size_t tables_bytes;  /* gpt2_fileio_alloc_table's n for tables */
    const uint8_t *bytes; /* the whole file */
    size_t n_bytes;
    bool mapped; /* bytes is an mmap this Model must unmap */
} Model;

/* Opens and validates the model file at path.  On failure returns false
 * with a one-line reason in err; m is then empty. */
bool gpt2_model_open(Model *m, const char *path, char *err, size_t errsz);

/* The same checks on a file already in memory.  The bytes must start at a
 * multiple of MODEL_ALIGN, as an mmap does (the weights are used in place),
 * and outlive m. */
bool gpt2_model_open_memory(Model *m, const uint8_t *bytes, size_t n, char *err, size_t errsz);

void gpt2_model_close(Model *m);

/* What a file of file_size bytes that starts with b[0..n) is: ours, or a
 * kind of file people mistake for it (gpt2.h's Gpt2FileKind names the same
 * kinds). */
typedef enum {
    MODEL_KIND_UNKNOWN,
    MODEL_KIND_EMPTY,
    MODEL_KIND_MODEL,
    MODEL_KIND_GGUF,
    MODEL_KIND_SAFETENSORS,
    MODEL_KIND_PYTORCH,
    MODEL_KIND_LLMC,
    MODEL_KIND_LFS_POINTER,
    MODEL_KIND_TEXT
} ModelFileKind;

ModelFileKind gpt2_model_identify(const uint8_t *b, size_t n, uint64_t file_size);

#endif
