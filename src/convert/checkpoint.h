/* checkpoint.h - the tensors of a checkpoint, whatever file layout held them.
 *
 * Owns the table every checkpoint reader fills (safetensors, sharded
 * safetensors, torch.save's zip and legacy formats, GGUF): for each tensor
 * its name, element type, shape and strides in elements, and where its
 * first element lies in a mapped file.  A reader checks, before it adds a
 * tensor, that every element its shape and strides reach lies inside the
 * bytes it came from; gpt2_checkpoint_add checks that again, so a tensor in
 * the table can always be read.  The table also owns what the readers
 * mapped or parsed, and releases it in gpt2_checkpoint_close.
 *
 * Shapes are as the checkpoint writes them, outermost dimension first: a
 * row-major [rows][cols] matrix has strides {cols, 1}.  A Q8_0 tensor is
 * always row-major and contiguous, its rows whole blocks of 32 values
 * (llama.cpp's blocks: an f16 scale, then 32 int8 quants).
 */
#ifndef GPT2_CHECKPOINT_H
#define GPT2_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CK_MAX_DIMS 8
#define CK_Q8_0_BLOCK_BYTES 34

typedef enum { CK_F32, CK_F16, CK_BF16, CK_Q8_0, CK_BOOL, CK_U8, CK_OTHER } CkDType;

typedef struct {
    char *name; /* owned */
    CkDType dtype;
    const char *dtype_name; /* as the file names it, for messages */
    int n_dims;
    uint64_t shape[CK_MAX_DIMS];
    uint64_t stride[CK_MAX_DIMS]; /* in elements */
    uint64_t n_elems;
    const uint8_t *data; /* element 0 */
    uint64_t span;       /* bytes from data that the tensor may touch */
} CkTensor;

typedef struct {
    const void *p;
    size_t n;
} CkMapping;

typedef struct {
    CkTensor *tensors; /* [n], sorted by name once gpt2_checkpoint_seal ran */
    size_t n, cap;
    CkMapping *maps; /* file mappings to release */
    size_t n_maps;
    void **owned; /* other memory to free */
    size_t n_owned;
    char label[64]; /* how messages name the checkpoint: "model.safetensors", ... */
} Checkpoint;

/* Bytes of one element (Q8_0: 0, it has no per-element size). */
unsigned gpt2_checkpoint_elem_size(CkDType t);

/* Adds a tensor (the name is copied).  Checks that its elements lie in
 * data[0..span): every shape/stride combination is checked with
 * overflow-safe arithmetic. */
bool gpt2_checkpoint_add(Checkpoint *ck, const char *name, CkDType dtype, const char *dtype_name, int n_dims,
                         const uint64_t *shape, const uint64_t *stride, const uint8_t *data, uint64_t span, char *err,
                         size_t errsz);
/* Maps the file at path (`what` names it in messages) for as long as ck
 * lives: close releases it.  On failure says why, the path first. */
bool gpt2_checkpoint_map(Checkpoint *ck, const char *path, const char *what, const void **p, size_t *n, char *err,
                         size_t errsz);
/* Keeps a malloc'd block, freed by close. */
bool gpt2_checkpoint_keep(Checkpoint *ck, void *p);

/* Sorts the table by name and refuses a name listed twice. */
bool gpt2_checkpoint_seal(Checkpoint *ck, char *err, size_t errsz);
const CkTensor *gpt2_checkpoint_find(const Checkpoint *ck, const char *name);
void gpt2_checkpoint_close(Checkpoint *ck);

/* Element (i, j) of a 2-D tensor, or element i of a 1-D one (j = 0), as
 * float32.  dtype must be F32, F16, BF16 or Q8_0. */
float gpt2_checkpoint_get(const CkTensor *t, uint64_t i, uint64_t j);

/* Reads a float tensor of rows x cols values (a vector: rows 1) into
 * out[rows * cols], row-major; with transposed, out[r][c] is the tensor's
 * element (c, r).  A vector may be stored with any number of leading unit
 * dimensions.  The caller has checked the shape. */
void gpt2_checkpoint_read(const CkTensor *t, bool transposed, uint64_t rows, uint64_t cols, float *out);

#endif
