/* fuzz_checkpoint.h - what the fuzz targets of the checkpoint readers check.
 *
 * Included by fuzz_torch.c, fuzz_gguf.c and fuzz_index.c (one copy each: a
 * header of static functions, as each target is one file).  A reader that
 * refuses says why in one non-empty line; one that accepts fills a
 * Checkpoint whose tensors can all be read as the converter reads them:
 * every tensor's data lies inside the bytes it came from (when the target
 * knows them), its first and furthest elements read, and a small float
 * tensor reads whole, both ways round, through gpt2_checkpoint_read.  ASan
 * sees any read past the input, which each target copies to an allocation
 * of exactly its size.
 */
#ifndef GPT2_FUZZ_CHECKPOINT_H
#define GPT2_FUZZ_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_check.h"

/* The largest tensor read whole, in elements. */
#define FUZZ_MAX_READ (1u << 16)

static bool is_float(CkDType t) { return t == CK_F32 || t == CK_F16 || t == CK_BF16 || t == CK_Q8_0; }

/* The element furthest from element 0, in elements. */
static uint64_t furthest(const CkTensor *t) {
    uint64_t last = 0;
    for (int d = 0; d < t->n_dims; d++) last += (t->shape[d] - 1) * t->stride[d];
    return last;
}

static void check_tensor(const CkTensor *t, const uint8_t *bytes, size_t n) {
    require(t->name && t->n_dims >= 0 && t->n_dims <= CK_MAX_DIMS);
    if (bytes) require(t->data >= bytes && t->span <= n && (size_t)(t->data - bytes) <= n - t->span);
    if (!is_float(t->dtype) || t->n_elems == 0) return;
    /* Element 0 and the furthest element, through a one-dimensional view. */
    CkTensor v = *t;
    v.n_dims = 1;
    v.shape[0] = 2;
    v.stride[0] = furthest(t);
    volatile float f = gpt2_checkpoint_get(&v, 0, 0) + gpt2_checkpoint_get(&v, 1, 0);
    (void)f;
    if (t->n_dims > 2 || t->n_elems > FUZZ_MAX_READ) return;
    uint64_t rows = t->n_dims == 2 ? t->shape[0] : 1, cols = t->n_dims == 2 ? t->shape[1] : t->n_elems;
    float *out = malloc((size_t)t->n_elems * sizeof *out);
    require(out != NULL);
    gpt2_checkpoint_read(t, false, rows, cols, out);
    if (t->n_dims == 2) gpt2_checkpoint_read(t, true, cols, rows, out);
    free(out);
}

/* Seals the table as the converter does, then checks every tensor and
 * that each is found by its name. */
static void check_checkpoint(Checkpoint *ck, const uint8_t *bytes, size_t n) {
    char err[512];
    if (!gpt2_checkpoint_seal(ck, err, sizeof err)) {
        check_refusal(err, sizeof err);
        return;
    }
    for (size_t i = 0; i < ck->n; i++) {
        check_tensor(&ck->tensors[i], bytes, n);
        require(gpt2_checkpoint_find(ck, ck->tensors[i].name) == &ck->tensors[i]);
    }
}

#endif
