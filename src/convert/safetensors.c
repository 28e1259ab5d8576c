/* safetensors.c - see safetensors.h. */
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "fileio.h"
#include "model_format.h" /* rd_u64 */
#include "utf8.h"

static const struct {
    const char *name;
    StDType type;
    unsigned size;
} st_dtypes[] = {
    {"F64", ST_F64, 8},   {"F32", ST_F32, 4},       {"F16", ST_F16, 2},       {"BF16", ST_BF16, 2},
    {"I64", ST_I64, 8},   {"I32", ST_I32, 4},       {"I16", ST_I16, 2},       {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},     {"BOOL", ST_BOOL, 1},     {"U16", ST_OTHER, 2},     {"U32", ST_OTHER, 4},
    {"U64", ST_OTHER, 8}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

typedef struct {
    uint64_t begin, end;
    size_t index;
} Range;

static int range_cmp(const void *a, const void *b) {
    const Range *x = a, *y = b; /* by begin, then end: an empty tensor sorts before one starting where it is */
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

/* Fills t from one header entry; data_len is the size of the data part. */
static bool read_entry(const JsonValue *key, const JsonValue *v, StTensor *t, uint64_t data_len, Range *range,
                       char *err, size_t errsz) {
    char name[UTF8_SHOWN];
    size_t key_len;
    t->name = gpt2_json_string(key, &key_len);
    gpt2_utf8_shown(t->name, key_len, name, sizeof name);
    const JsonValue *dtype = gpt2_json_get(v, "dtype"), *shape = gpt2_json_get(v, "shape"),
                    *offs = gpt2_json_get(v, "data_offsets");
    if (v->type != JSON_OBJECT || !dtype || dtype->type != JSON_STRING || !shape || shape->type != JSON_ARRAY ||
        !offs || offs->type != JSON_ARRAY || gpt2_json_count(offs) != 2) {
        snprintf(err, errsz, "tensor \"%s\": needs dtype, shape and two data_offsets", name);
        return false;
    }
    unsigned size = 0;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++) {
        if (gpt2_json_string_is(dtype, st_dtypes[i].name)) {
            t->dtype = st_dtypes[i].type;
            t->dtype_name = st_dtypes[i].name;
            size = st_dtypes[i].size;
        }
    }
    if (!size) {
        char shown[24];
        snprintf(err, errsz, "tensor \"%s\": unknown dtype \"%s\"", name,
                 gpt2_utf8_shown(gpt2_json_string(dtype, NULL), dtype->n, shown, sizeof shown));
        return false;
    }
    if (gpt2_json_count(shape) > ST_MAX_DIMS) {
        snprintf(err, errsz, "tensor \"%s\": more than %d dimensions", name, ST_MAX_DIMS);
        return false;
    }
    t->n_dims = (int)gpt2_json_count(shape);
    JsonIter dims = gpt2_json_iter(shape);
    /* The element count, saturated at UINT64_MAX (which then matches no
     * byte range); a zero dimension makes it 0 whatever the others are. */
    uint64_t n = 1;
    bool zero = false;
    for (int i = 0; i < t->n_dims; i++) {
        int64_t d;
        if (!gpt2_json_as_int(gpt2_json_next(&dims, NULL), 0, INT64_MAX, &d)) {
            snprintf(err, errsz, "tensor \"%s\": a dimension of its shape is not a non-negative integer", name);
            return false;
        }
        t->shape[i] = (uint64_t)d;
        if (d == 0) zero = true;
        else n = n > UINT64_MAX / (uint64_t)d ? UINT64_MAX : n * (uint64_t)d;
    }
    if (zero) n = 0;
    int64_t begin, end;
    if (!gpt2_json_as_int(gpt2_json_at(offs, 0), 0, INT64_MAX, &begin) ||
        !gpt2_json_as_int(gpt2_json_at(offs, 1), 0, INT64_MAX, &end) || begin > end) {
        snprintf(err, errsz, "tensor \"%s\": data_offsets must be two integers, begin <= end", name);
        return false;
    }
    if ((uint64_t)end > data_len) {
        snprintf(err, errsz,
                 "tensor \"%s\": data_offsets end at byte %lld but the data has only %llu bytes (truncated file?)",
                 name, (long long)end, (unsigned long long)data_len);
        return false;
    }
    if (n > UINT64_MAX / size || n * size != (uint64_t)(end - begin)) {
        snprintf(err, errsz, "tensor \"%s\": %llu bytes of data do not match its shape and dtype %s", name,
                 (unsigned long long)(end - begin), t->dtype_name);
        return false;
    }
    t->n_elems = n;
    t->n_bytes = (uint64_t)(end - begin);
    range->begin = (uint64_t)begin;
    range->end = (uint64_t)end;
    return true;
}

/* The format allows only "__metadata__": an object of string values. */
static bool check_metadata(const JsonValue *v, char *err, size_t errsz) {
    bool ok = v->type == JSON_OBJECT;
    JsonIter it = gpt2_json_iter(v);
    const JsonValue *m;
    while (ok && (m = gpt2_json_next(&it, NULL))) ok = m->type == JSON_STRING;
    if (!ok) snprintf(err, errsz, "damaged safetensors header: __metadata__ is not an object of strings");
    return ok;
}

/* The tensors must tile the data exactly, as the format requires: sorted by
 * offset, each begins where the previous ended and the last ends at the end
 * of the file.  An overlap would alias two tensors; a gap or a tail would
 * be bytes nobody accounts for (and room for a polyglot file). */
static bool check_tiling(const SafeTensors *st, Range *ranges, uint64_t data_len, char *err, size_t errsz) {
    qsort(ranges, st->n_tensors, sizeof *ranges, range_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < st->n_tensors; i++) {
        if (ranges[i].begin < at) {
            const char *x = st->tensors[ranges[i - 1].index].name, *y = st->tensors[ranges[i].index].name;
            char a[UTF8_SHOWN], b[UTF8_SHOWN];
            snprintf(err, errsz, "damaged safetensors file: tensors \"%s\" and \"%s\" overlap",
                     gpt2_utf8_shown(x, strlen(x), a, sizeof a), gpt2_utf8_shown(y, strlen(y), b, sizeof b));
            return false;
        }
        if (ranges[i].begin > at) {
            snprintf(err, errsz, "damaged safetensors file: data bytes %llu..%llu belong to no tensor",
                     (unsigned long long)at, (unsigned long long)ranges[i].begin - 1);
            return false;
        }
        at = ranges[i].end;
    }
    if (at != data_len) {
        snprintf(err, errsz, "damaged safetensors file: %llu bytes after the last tensor belong to no tensor",
                 (unsigned long long)(data_len - at));
        return false;
    }
    return true;
}

bool gpt2_safetensors_parse(SafeTensors *st, const uint8_t *b, size_t n, char *err, size_t errsz) {
    memset(st, 0, sizeof *st);
    if (n < 8) {
        snprintf(err, errsz, "not a safetensors file: only %zu bytes", n);
        return false;
    }
    uint64_t hlen = rd_u64(b);
    if (hlen > n - 8) {
        snprintf(err, errsz, "damaged safetensors file: its header length %llu exceeds the file (%zu bytes)",
                 (unsigned long long)hlen, n);
        return false;
    }
    if (hlen > ST_MAX_HEADER) {
        snprintf(err, errsz, "damaged safetensors file: its header length %llu is beyond the format's limit of %u",
                 (unsigned long long)hlen, ST_MAX_HEADER);
        return false;
    }
    if (hlen > JSON_MAX_SAFETENSORS_HEADER) {
        snprintf(err, errsz, "the safetensors header has %llu bytes, more than this reader's limit of %u MiB",
                 (unsigned long long)hlen, JSON_MAX_SAFETENSORS_HEADER >> 20);
        return false;
    }
    char why[200];
    if (!gpt2_json_parse(&st->header, (const char *)b + 8, (size_t)hlen, why, sizeof why)) {
        snprintf(err, errsz, "damaged safetensors header: %s", why);
        return false;
    }
    const JsonValue *root = st->header.root;
    Range *ranges = NULL;
    if (root->type != JSON_OBJECT) {
        snprintf(err, errsz, "damaged safetensors header: not a JSON object");
        goto fail;
    }
    const uint8_t *data = b + 8 + hlen;
    const uint64_t data_len = n - 8 - hlen;
    /* At most one entry per member, and the members exist: the allocation
     * is bounded by the header's real size. */
    size_t count = gpt2_json_count(root);
    st->tensors = calloc(count ? count : 1, sizeof *st->tensors);
    ranges = calloc(count ? count : 1, sizeof *ranges);
    if (!st->tensors || !ranges) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    JsonIter it = gpt2_json_iter(root);
    const JsonValue *key, *value;
    while ((value = gpt2_json_next(&it, &key))) {
        size_t key_len;
        const char *name = gpt2_json_string(key, &key_len);
        if (strlen(name) != key_len) {
            snprintf(err, errsz, "damaged safetensors header: a tensor name contains NUL");
            goto fail;
        }
        if (strcmp(name, "__metadata__") == 0) {
            if (!check_metadata(value, err, errsz)) goto fail;
            continue;
        }
        StTensor *t = &st->tensors[st->n_tensors++];
        Range r;
        if (!read_entry(key, value, t, data_len, &r, err, errsz)) goto fail;
        t->data = data + r.begin;
    }
    /* Sorting by name (the order of the header does not matter to anyone)
     * puts duplicates side by side. */
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, name_cmp);
    for (size_t i = 1; i < st->n_tensors; i++) {
        if (strcmp(st->tensors[i].name, st->tensors[i - 1].name) == 0) {
            char a[UTF8_SHOWN];
            snprintf(err, errsz, "damaged safetensors header: tensor \"%s\" is listed twice",
                     gpt2_utf8_shown(st->tensors[i].name, strlen(st->tensors[i].name), a, sizeof a));
            goto fail;
        }
    }
    for (size_t i = 0; i < st->n_tensors; i++) {
        uint64_t begin = (uint64_t)(st->tensors[i].data - data);
        ranges[i] = (Range){begin, begin + st->tensors[i].n_bytes, i};
    }
    if (!check_tiling(st, ranges, data_len, err, errsz)) goto fail;
    free(ranges);
    st->bytes = b;
    st->n_bytes = n;
    return true;
fail:
    free(ranges);
    free(st->tensors);
    gpt2_json_free(&st->header);
    memset(st, 0, sizeof *st);
    return false;
}

bool gpt2_safetensors_open(SafeTensors *st, const char *path, char *err, size_t errsz) {
    memset(st, 0, sizeof *st);
    char why[400];
    const void *p;
    size_t n;
    if (!gpt2_fileio_map(path, "a safetensors file", &p, &n, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        return false;
    }
    if (!gpt2_safetensors_parse(st, p, n, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        gpt2_fileio_unmap(p, n);
        return false;
    }
    st->mapped = true;
    return true;
}

void gpt2_safetensors_close(SafeTensors *st) {
    free(st->tensors);
    gpt2_json_free(&st->header);
    if (st->mapped) gpt2_fileio_unmap(st->bytes, st->n_bytes);
    memset(st, 0, sizeof *st);
}

const StTensor *gpt2_safetensors_find(const SafeTensors *st, const char *name) {
    StTensor key = {.name = name};
    if (st->n_tensors == 0) return NULL;
    return bsearch(&key, st->tensors, st->n_tensors, sizeof *st->tensors, name_cmp);
}

bool gpt2_safetensors_read_f32(const StTensor *t, float *out) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(out, p,
               t->n_elems * 4); /* as is: the project runs on little-endian hosts only (model.c refuses others) */
        return true;
    case ST_F16:
    case ST_BF16:
        for (uint64_t i = 0; i < t->n_elems; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = t->dtype == ST_F16 ? gpt2_f16_to_f32(h) : gpt2_bf16_to_f32(h);
        }
        return true;
    default: return false;
    }
}
