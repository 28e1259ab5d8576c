/* shards.c - see shards.h. */
#include "shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json.h"
#include "safetensors.h"
#include "torch_checkpoint.h"
#include "utf8.h"

static CkDType from_st(StDType t) {
    switch (t) {
    case ST_F32: return CK_F32;
    case ST_F16: return CK_F16;
    case ST_BF16: return CK_BF16;
    case ST_BOOL: return CK_BOOL;
    case ST_U8: return CK_U8;
    default: return CK_OTHER;
    }
}

bool gpt2_shards_add_safetensors(Checkpoint *ck, const char *path, char *err, size_t errsz) {
    const void *p;
    size_t n;
    char why[400];
    if (!gpt2_checkpoint_map(ck, path, "a safetensors file", &p, &n, err, errsz)) return false;
    SafeTensors st;
    if (!gpt2_safetensors_parse(&st, p, n, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < st.n_tensors; i++) {
        const StTensor *t = &st.tensors[i];
        uint64_t stride[ST_MAX_DIMS];
        uint64_t s = 1;
        for (int d = t->n_dims; d-- > 0;) {
            stride[d] = s;
            s = t->shape[d] && s > UINT64_MAX / t->shape[d] ? UINT64_MAX : s * t->shape[d];
        }
        ok = gpt2_checkpoint_add(ck, t->name, from_st(t->dtype), t->dtype_name, t->n_dims, t->shape, stride, t->data,
                                 t->n_bytes, why, sizeof why);
        if (!ok) snprintf(err, errsz, "%s: %s", path, why);
    }
    gpt2_safetensors_close(&st); /* not mapped by it: the mapping stays with ck */
    return ok;
}

/* A shard's name must stay in the index's folder. */
static bool plain_name(const char *s, size_t len) {
    return s && len > 0 && strlen(s) == len && !strchr(s, '/') && !strchr(s, '\\') && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

/* Nor may it hold a control character: the shard's path goes into
 * messages, which are one line. */
static bool has_control(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F) return true;
    return false;
}

static int str_cmp(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Each tensor the index lists, with its shard; a later duplicate key
 * replaces an earlier one, as gpt2_json_get reads it. */
typedef struct {
    const char *name, *file;
} Listed;

static int listed_cmp(const void *a, const void *b) {
    return strcmp(((const Listed *)a)->name, ((const Listed *)b)->name);
}

static bool read_index(const JsonValue *map, const char *index_path, Listed **out, size_t *n_out, char *err,
                       size_t errsz) {
    size_t count = gpt2_json_count(map);
    Listed *l = malloc((count ? count : 1) * sizeof *l);
    if (!l) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    JsonIter it = gpt2_json_iter(map);
    const JsonValue *key, *value;
    size_t n = 0;
    while ((value = gpt2_json_next(&it, &key))) {
        size_t klen, vlen;
        const char *k = gpt2_json_string(key, &klen), *v = gpt2_json_string(value, &vlen);
        if (strlen(k) != klen || !plain_name(v, vlen)) {
            char shown[UTF8_SHOWN];
            snprintf(err, errsz, "%s: weight_map entry \"%s\" does not name a file in the same folder", index_path,
                     gpt2_utf8_shown(k, klen, shown, sizeof shown));
            free(l);
            return false;
        }
        if (has_control(v, vlen)) {
            char shown[UTF8_SHOWN], file[UTF8_SHOWN];
            snprintf(err, errsz, "%s: weight_map entry \"%s\" names the file \"%s\", with a control character",
                     index_path, gpt2_utf8_shown(k, klen, shown, sizeof shown),
                     gpt2_utf8_shown(v, vlen, file, sizeof file));
            free(l);
            return false;
        }
        l[n++] = (Listed){k, v};
    }
    /* A key listed twice takes its last file (what gpt2_json_get finds),
     * then the duplicates are dropped. */
    for (size_t i = 0; i < n; i++) l[i].file = gpt2_json_string(gpt2_json_get(map, l[i].name), NULL);
    qsort(l, n, sizeof *l, listed_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(l[i].name, l[u - 1].name) != 0) l[u++] = l[i];
    *out = l;
    *n_out = u;
    return true;
}

bool gpt2_shards_add_index_text(Checkpoint *ck, const char *text, size_t len, const char *index_path, bool torch,
                                char *err, size_t errsz) {
    JsonDoc doc;
    char why[400];
    bool ok = gpt2_json_parse(&doc, text, len, why, sizeof why);
    if (!ok) {
        snprintf(err, errsz, "%s: %s", index_path, why);
        return false;
    }
    const JsonValue *map = doc.root->type == JSON_OBJECT ? gpt2_json_get(doc.root, "weight_map") : NULL;
    if (!map || map->type != JSON_OBJECT || gpt2_json_count(map) == 0) {
        snprintf(err, errsz, "%s: no \"weight_map\" object naming the tensors' files", index_path);
        gpt2_json_free(&doc);
        return false;
    }
    Listed *listed = NULL;
    size_t n_listed = 0;
    ok = read_index(map, index_path, &listed, &n_listed, err, errsz);
    /* The distinct shard names, sorted. */
    const char **files = ok ? malloc(n_listed * sizeof *files) : NULL;
    if (ok && !files) {
        snprintf(err, errsz, "out of memory");
        ok = false;
    }
    size_t n_files = 0;
    if (ok) {
        for (size_t i = 0; i < n_listed; i++) files[i] = listed[i].file;
        qsort(files, n_listed, sizeof *files, str_cmp);
        for (size_t i = 0; i < n_listed; i++)
            if (n_files == 0 || strcmp(files[i], files[n_files - 1]) != 0) files[n_files++] = files[i];
    }
    char dir[4096];
    const char *slash = strrchr(index_path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - index_path) : 1, slash ? index_path : ".");
    if (slash == index_path) snprintf(dir, sizeof dir, "/");
    for (size_t i = 0; ok && i < n_files; i++) {
        char path[4096 + 256];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= sizeof path) {
            snprintf(err, errsz, "%s: a shard's path is too long", index_path);
            ok = false;
            break;
        }
        ok =
            torch ? gpt2_torch_checkpoint_add(ck, path, err, errsz) : gpt2_shards_add_safetensors(ck, path, err, errsz);
    }
    ok = ok && gpt2_checkpoint_seal(ck, err, errsz);
    for (size_t i = 0; ok && i < n_listed; i++) {
        if (!gpt2_checkpoint_find(ck, listed[i].name)) {
            char a[UTF8_SHOWN], b[UTF8_SHOWN];
            snprintf(err, errsz, "%s lists tensor \"%s\" in %s, which does not hold it", index_path,
                     gpt2_utf8_shown(listed[i].name, strlen(listed[i].name), a, sizeof a),
                     gpt2_utf8_shown(listed[i].file, strlen(listed[i].file), b, sizeof b));
            ok = false;
        }
    }
    if (ok && n_listed != ck->n) {
        snprintf(err, errsz, "%s: the shards hold %zu tensors but the index lists %zu", index_path, ck->n, n_listed);
        ok = false;
    }
    free(files);
    free(listed);
    gpt2_json_free(&doc);
    return ok;
}

bool gpt2_shards_add_index(Checkpoint *ck, const char *index_path, bool torch, char *err, size_t errsz) {
    StrBuf text = {0};
    if (!gpt2_fileio_read_file_max(index_path, JSON_MAX_INDEX, &text, err, errsz)) return false;
    bool ok = gpt2_shards_add_index_text(ck, text.data, text.len, index_path, torch, err, errsz);
    gpt2_strbuf_free(&text);
    return ok;
}
