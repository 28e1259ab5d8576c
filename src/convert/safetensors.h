/* safetensors.h - reading Hugging Face .safetensors files.
 *
 * Owns parsing and validating the format: an 8-byte little-endian header
 * length N, N bytes of JSON naming each tensor's dtype, shape and byte
 * range, then the data.  Nothing is trusted: the header must lie inside the
 * file and be at most ST_MAX_HEADER bytes, each tensor's length must equal
 * its shape times its element size, and the tensors' ranges must tile the
 * data exactly (no overlap, no gap, nothing after the last), as the format
 * requires.  Names are unique.  Every allocation is bounded by the size of
 * the header actually present.  The data is not aligned in real files, so
 * it is only ever copied out, never cast.
 */
#ifndef GPT2_SAFETENSORS_H
#define GPT2_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20) /* the format's own limit on N */

typedef enum { ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL, ST_OTHER } StDType;

typedef struct {
    const char *name; /* NUL-terminated, points into the parsed header */
    StDType dtype;
    const char *dtype_name;
    int n_dims;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t n_elems;
    const uint8_t *data; /* unaligned, n_bytes long */
    uint64_t n_bytes;
} StTensor;

typedef struct {
    StTensor *tensors; /* [n_tensors], sorted by name */
    size_t n_tensors;
    JsonDoc header;
    const uint8_t *bytes; /* the whole file */
    size_t n_bytes;
    bool mapped;
} SafeTensors;

bool gpt2_safetensors_open(SafeTensors *st, const char *path, char *err, size_t errsz);
/* The same checks on a file in memory (which must outlive st). */
bool gpt2_safetensors_parse(SafeTensors *st, const uint8_t *bytes, size_t n, char *err, size_t errsz);
void gpt2_safetensors_close(SafeTensors *st);

const StTensor *gpt2_safetensors_find(const SafeTensors *st, const char *name);

/* Copies t into out[t->n_elems] as float32.  False when t's dtype is not
 * F32, F16 or BF16. */
bool gpt2_safetensors_read_f32(const StTensor *t, float *out);

#endif
