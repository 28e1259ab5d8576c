/* checkpoint.c - see checkpoint.h. */
#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "fileio.h"
#include "utf8.h"

unsigned gpt2_checkpoint_elem_size(CkDType t) {
    switch (t) {
    case CK_F32: return 4;
    case CK_F16:
    case CK_BF16: return 2;
    case CK_BOOL:
    case CK_U8: return 1;
    default: return 0;
    }
}

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * size);
    if (!q) return false;
    *p = q;
    *cap = n;
    return true;
}

/* The byte just past the furthest element, or false when it overflows. */
static bool tensor_extent(CkDType dtype, int n_dims, const uint64_t *shape, const uint64_t *stride, uint64_t *n_elems,
                          uint64_t *extent) {
    uint64_t n = 1, last = 0;
    for (int i = 0; i < n_dims; i++) {
        if (shape[i] == 0) n = 0;
        else if (n && n > UINT64_MAX / shape[i]) return false;
        else n *= shape[i];
    }
    *n_elems = n;
    if (n == 0) {
        *extent = 0;
        return true;
    }
    for (int i = 0; i < n_dims; i++) {
        uint64_t step = shape[i] - 1;
        if (step && stride[i] > (UINT64_MAX - last) / step) return false;
        last += step * stride[i];
    }
    if (dtype == CK_Q8_0) {
        /* Row-major and contiguous, whole blocks per row (checked by the
         * GGUF reader): blocks of 32 values. */
        if (last == UINT64_MAX || (last + 1) % 32 != 0 || (last + 1) / 32 > UINT64_MAX / CK_Q8_0_BLOCK_BYTES)
            return false;
        *extent = (last + 1) / 32 * CK_Q8_0_BLOCK_BYTES;
        return true;
    }
    unsigned size = gpt2_checkpoint_elem_size(dtype);
    if (size == 0 || last >= UINT64_MAX / size) return false;
    *extent = (last + 1) * size;
    return true;
}

bool gpt2_checkpoint_add(Checkpoint *ck, const char *name, CkDType dtype, const char *dtype_name, int n_dims,
                         const uint64_t *shape, const uint64_t *stride, const uint8_t *data, uint64_t span, char *err,
                         size_t errsz) {
    char shown[UTF8_SHOWN];
    gpt2_utf8_shown(name, strlen(name), shown, sizeof shown);
    if (n_dims < 0 || n_dims > CK_MAX_DIMS) {
        snprintf(err, errsz, "tensor \"%s\" has %d dimensions", shown, n_dims);
        return false;
    }
    uint64_t n_elems = 0, extent = 0;
    if (dtype != CK_OTHER && (!tensor_extent(dtype, n_dims, shape, stride, &n_elems, &extent) || extent > span)) {
        snprintf(err, errsz, "tensor \"%s\": its shape and strides reach beyond its data", shown);
        return false;
    }
    if (!grow((void **)&ck->tensors, &ck->cap, ck->n + 1, sizeof *ck->tensors)) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    CkTensor *t = &ck->tensors[ck->n];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    t->dtype = dtype;
    t->dtype_name = dtype_name;
    t->n_dims = n_dims;
    for (int i = 0; i < n_dims; i++) t->shape[i] = shape[i], t->stride[i] = stride[i];
    t->n_elems = n_elems;
    t->data = data;
    t->span = span;
    ck->n++;
    return true;
}

bool gpt2_checkpoint_map(Checkpoint *ck, const char *path, const char *what, const void **p, size_t *n, char *err,
                         size_t errsz) {
    char why[400];
    if (!gpt2_fileio_map(path, what, p, n, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        return false;
    }
    CkMapping *m = realloc(ck->maps, (ck->n_maps + 1) * sizeof *m); /* one at a time: a handful of files */
    if (!m) {
        gpt2_fileio_unmap(*p, *n);
        snprintf(err, errsz, "out of memory");
        return false;
    }
    ck->maps = m;
    ck->maps[ck->n_maps++] = (CkMapping){*p, *n};
    return true;
}

bool gpt2_checkpoint_keep(Checkpoint *ck, void *p) {
    void **o = realloc(ck->owned, (ck->n_owned + 1) * sizeof *o);
    if (!o) return false;
    ck->owned = o;
    ck->owned[ck->n_owned++] = p;
    return true;
}

static int tensor_cmp(const void *a, const void *b) {
    return strcmp(((const CkTensor *)a)->name, ((const CkTensor *)b)->name);
}

bool gpt2_checkpoint_seal(Checkpoint *ck, char *err, size_t errsz) {
    if (ck->n) qsort(ck->tensors, ck->n, sizeof *ck->tensors, tensor_cmp);
    for (size_t i = 1; i < ck->n; i++) {
        if (strcmp(ck->tensors[i].name, ck->tensors[i - 1].name) == 0) {
            char shown[UTF8_SHOWN];
            snprintf(err, errsz, "%s holds tensor \"%s\" twice", ck->label,
                     gpt2_utf8_shown(ck->tensors[i].name, strlen(ck->tensors[i].name), shown, sizeof shown));
            return false;
        }
    }
    return true;
}

const CkTensor *gpt2_checkpoint_find(const Checkpoint *ck, const char *name) {
    CkTensor key = {.name = (char *)name};
    if (ck->n == 0) return NULL;
    return bsearch(&key, ck->tensors, ck->n, sizeof *ck->tensors, tensor_cmp);
}

void gpt2_checkpoint_close(Checkpoint *ck) {
    for (size_t i = 0; i < ck->n; i++) free(ck->tensors[i].name);
    free(ck->tensors);
    for (size_t i = 0; i < ck->n_maps; i++) gpt2_fileio_unmap(ck->maps[i].p, ck->maps[i].n);
    free(ck->maps);
    for (size_t i = 0; i < ck->n_owned; i++) free(ck->owned[i]);
    free(ck->owned);
    memset(ck, 0, sizeof *ck);
}

static float element(const CkTensor *t, uint64_t at) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case CK_F32: {
        float f;
        memcpy(&f, p + at * 4, 4); /* little-endian hosts only, as everywhere */
        return f;
    }
    case CK_F16: return gpt2_f16_to_f32((uint16_t)(p[2 * at] | p[2 * at + 1] << 8));
    case CK_BF16: return gpt2_bf16_to_f32((uint16_t)(p[2 * at] | p[2 * at + 1] << 8));
    case CK_Q8_0: {
        const uint8_t *block = p + at / 32 * CK_Q8_0_BLOCK_BYTES;
        float d = gpt2_f16_to_f32((uint16_t)(block[0] | block[1] << 8));
        return d * (float)(int8_t)block[2 + at % 32];
    }
    default: return 0;
    }
}

float gpt2_checkpoint_get(const CkTensor *t, uint64_t i, uint64_t j) {
    int d = t->n_dims;
    uint64_t at = d >= 2 ? i * t->stride[d - 2] + j * t->stride[d - 1] : d == 1 ? i * t->stride[0] : 0;
    return element(t, at);
}

void gpt2_checkpoint_read(const CkTensor *t, bool transposed, uint64_t rows, uint64_t cols, float *out) {
    if (rows == 1 || t->n_dims < 2) { /* a vector, perhaps with leading unit dimensions */
        /* Along the last dimension; transposed, out[0][c] is element (c, 0),
         * along the one before it. */
        const int d = t->n_dims;
        const uint64_t stride = d == 0 ? 1 : d >= 2 && transposed ? t->stride[d - 2] : t->stride[d - 1];
        for (uint64_t k = 0; k < rows * cols; k++) out[k] = element(t, k * stride);
        return;
    }
    int d = t->n_dims;
    uint64_t s0 = t->stride[d - 2], s1 = t->stride[d - 1];
    if (transposed) { /* out[r][c] = t[c][r] */
        uint64_t tmp = s0;
        s0 = s1, s1 = tmp;
    }
    const uint64_t B = 32; /* tiles keep both sides in cache */
    for (uint64_t r0 = 0; r0 < rows; r0 += B)
        for (uint64_t c0 = 0; c0 < cols; c0 += B)
            for (uint64_t r = r0; r < r0 + B && r < rows; r++)
                for (uint64_t c = c0; c < c0 + B && c < cols; c++) out[r * cols + c] = element(t, r * s0 + c * s1);
}
