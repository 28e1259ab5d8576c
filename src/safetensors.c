/* safetensors.c - see safetensors.h. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dtype.h"
#include "model_format.h" /* rd_u64 */

static const struct {
    const char *name;
    StDType type;
    unsigned size;
} st_dtypes[] = {
    {"F64", ST_F64, 8},  {"F32", ST_F32, 4},    {"F16", ST_F16, 2},         {"BF16", ST_BF16, 2},
    {"I64", ST_I64, 8},  {"I32", ST_I32, 4},    {"I16", ST_I16, 2},         {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},    {"BOOL", ST_BOOL, 1},  {"U16", ST_OTHER, 2},       {"U32", ST_OTHER, 4},
    {"U64", ST_OTHER, 8}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1},
};

typedef struct {
    uint64_t begin, end;
    size_t index;
} Range;

static int range_cmp(const void *a, const void *b) {
    const Range *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const StTensor *)a)->name, ((const StTensor *)b)->name);
}

/* Fills t from one header entry; data_len is the size of the data part. */
static bool read_entry(const JsonMember *m, StTensor *t, uint64_t data_len, Range *range, char *err, size_t errsz) {
    const JsonValue *v = &m->value;
    const JsonValue *dtype = json_get(v, "dtype"), *shape = json_get(v, "shape"), *offs = json_get(v, "data_offsets");
    t->name = m->key;
    if (v->type != JSON_OBJECT || !dtype || dtype->type != JSON_STRING || !shape || shape->type != JSON_ARRAY || !offs ||
        offs->type != JSON_ARRAY || offs->u.array.count != 2) {
        snprintf(err, errsz, "tensor \"%s\": needs dtype, shape and two data_offsets", m->key);
        return false;
    }
    unsigned size = 0;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++) {
        if (strcmp(dtype->u.string.bytes, st_dtypes[i].name) == 0) {
            t->dtype = st_dtypes[i].type;
            t->dtype_name = st_dtypes[i].name;
            size = st_dtypes[i].size;
        }
    }
    if (!size) {
        snprintf(err, errsz, "tensor \"%s\": unknown dtype \"%.20s\"", m->key, dtype->u.string.bytes);
        return false;
    }
    if (shape->u.array.count > ST_MAX_DIMS) {
        snprintf(err, errsz, "tensor \"%s\": more than %d dimensions", m->key, ST_MAX_DIMS);
        return false;
    }
    t->n_dims = (int)shape->u.array.count;
    uint64_t n = 1;
    bool overflow = false;
    for (int i = 0; i < t->n_dims; i++) {
        int64_t d;
        if (!json_as_int(&shape->u.array.items[i], 0, INT64_MAX, &d)) {
            snprintf(err, errsz, "tensor \"%s\": bad shape", m->key);
            return false;
        }
        t->shape[i] = (uint64_t)d;
        if (d && n > UINT64_MAX / (uint64_t)d) overflow = true;
        else n *= (uint64_t)d;
    }
    int64_t begin, end;
    if (!json_as_int(&offs->u.array.items[0], 0, INT64_MAX, &begin) ||
        !json_as_int(&offs->u.array.items[1], 0, INT64_MAX, &end) || begin > end || (uint64_t)end > data_len) {
        snprintf(err, errsz, "tensor \"%s\": data_offsets outside the data", m->key);
        return false;
    }
    if (overflow || n > UINT64_MAX / size || n * size != (uint64_t)(end - begin)) {
        snprintf(err, errsz, "tensor \"%s\": %llu bytes of data do not fit its shape and dtype", m->key,
                 (unsigned long long)(end - begin));
        return false;
    }
    t->n_elems = n;
    t->n_bytes = (uint64_t)(end - begin);
    range->begin = (uint64_t)begin;
    range->end = (uint64_t)end;
    return true;
}

bool safetensors_parse(SafeTensors *st, const uint8_t *b, size_t n, char *err, size_t errsz) {
    memset(st, 0, sizeof *st);
    if (n < 8) {
        snprintf(err, errsz, "not a safetensors file: only %zu bytes", n);
        return false;
    }
    uint64_t hlen = rd_u64(b);
    if (hlen > n - 8 || hlen > ST_MAX_HEADER) {
        snprintf(err, errsz, "damaged safetensors file: its header length %llu exceeds the file (%zu bytes)",
                 (unsigned long long)hlen, n);
        return false;
    }
    char why[200];
    if (!json_parse(&st->header, (const char *)b + 8, (size_t)hlen, why, sizeof why)) {
        snprintf(err, errsz, "damaged safetensors header: %s", why);
        return false;
    }
    const JsonValue *root = &st->header.root;
    Range *ranges = NULL;
    if (root->type != JSON_OBJECT) {
        snprintf(err, errsz, "damaged safetensors header: not a JSON object");
        goto fail;
    }
    const uint8_t *data = b + 8 + hlen;
    const uint64_t data_len = n - 8 - hlen;
    size_t count = root->u.object.count;
    st->tensors = calloc(count ? count : 1, sizeof *st->tensors);
    ranges = calloc(count ? count : 1, sizeof *ranges);
    if (!st->tensors || !ranges) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        const JsonMember *m = &root->u.object.members[i];
        if (strcmp(m->key, "__metadata__") == 0) continue;
        StTensor *t = &st->tensors[st->n_tensors];
        Range *r = &ranges[st->n_tensors];
        if (strlen(m->key) != m->key_len) {
            snprintf(err, errsz, "damaged safetensors header: a tensor name contains NUL");
            goto fail;
        }
        if (!read_entry(m, t, data_len, r, err, errsz)) goto fail;
        t->data = data + r->begin;
        r->index = st->n_tensors++;
    }
    qsort(ranges, st->n_tensors, sizeof *ranges, range_cmp);
    for (size_t i = 1; i < st->n_tensors; i++) {
        if (ranges[i].begin < ranges[i - 1].end) {
            snprintf(err, errsz, "damaged safetensors file: tensors \"%s\" and \"%s\" overlap",
                     st->tensors[ranges[i - 1].index].name, st->tensors[ranges[i].index].name);
            goto fail;
        }
    }
    /* Sorting by name (the order of the header does not matter to anyone)
     * puts duplicates side by side. */
    qsort(st->tensors, st->n_tensors, sizeof *st->tensors, name_cmp);
    for (size_t i = 1; i < st->n_tensors; i++) {
        if (strcmp(st->tensors[i].name, st->tensors[i - 1].name) == 0) {
            snprintf(err, errsz, "damaged safetensors header: tensor \"%s\" is listed twice", st->tensors[i].name);
            goto fail;
        }
    }
    free(ranges);
    st->bytes = b;
    st->n_bytes = n;
    return true;
fail:
    free(ranges);
    free(st->tensors);
    json_free(&st->header);
    memset(st, 0, sizeof *st);
    return false;
}

bool safetensors_open(SafeTensors *st, const char *path, char *err, size_t errsz) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return false;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errsz, "%s: not a regular file", path);
        close(fd);
        return false;
    }
    size_t n = (size_t)sb.st_size;
    void *p = n ? mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (n && p == MAP_FAILED) {
        snprintf(err, errsz, "%s: cannot map: %s", path, strerror(errno));
        return false;
    }
    char why[400];
    if (!safetensors_parse(st, n ? p : (const uint8_t *)"", n, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        if (n) munmap(p, n);
        return false;
    }
    st->mapped = n > 0;
    return true;
}

void safetensors_close(SafeTensors *st) {
    free(st->tensors);
    json_free(&st->header);
    if (st->mapped) munmap((void *)st->bytes, st->n_bytes);
    memset(st, 0, sizeof *st);
}

const StTensor *safetensors_find(const SafeTensors *st, const char *name) {
    StTensor key = {.name = name};
    if (st->n_tensors == 0) return NULL;
    return bsearch(&key, st->tensors, st->n_tensors, sizeof *st->tensors, name_cmp);
}

bool safetensors_read_f32(const StTensor *t, float *out) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(out, p, t->n_elems * 4); /* little-endian host, checked by the model loader */
        return true;
    case ST_F16:
    case ST_BF16:
        for (uint64_t i = 0; i < t->n_elems; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = t->dtype == ST_F16 ? f16_to_f32(h) : bf16_to_f32(h);
        }
        return true;
    default:
        return false;
    }
}
