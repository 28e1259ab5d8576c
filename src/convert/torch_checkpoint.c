/* torch_checkpoint.c - see torch_checkpoint.h. */
#include "torch_checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_format.h" /* rd_u64 */
#include "pickle.h"
#include "utf8.h"
#include "zip.h"

/* A legacy file starts with PROTO 2 and the LONG1 of its magic number. */
static const uint8_t legacy_start[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                       0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

bool gpt2_torch_is_torch(const uint8_t *b, size_t n) {
    return gpt2_zip_is_zip(b, n) || (n >= sizeof legacy_start && memcmp(b, legacy_start, sizeof legacy_start) == 0);
}

/* Adds tensor t of a state dict whose storage's bytes are s[0..bytes). */
static bool add_view(Checkpoint *ck, const PickleTensor *t, const uint8_t *s, uint64_t bytes, const char *name,
                     char *err, size_t errsz) {
    unsigned size = gpt2_checkpoint_elem_size(t->dtype);
    char shown[UTF8_SHOWN];
    gpt2_utf8_shown(t->storage_key, strlen(t->storage_key), shown, sizeof shown);
    if (t->storage_numel > bytes / size) {
        snprintf(err, errsz, "%s: storage \"%s\" holds %llu bytes, fewer than its %llu elements need", name, shown,
                 (unsigned long long)bytes, (unsigned long long)t->storage_numel);
        return false;
    }
    if (t->offset > t->storage_numel) {
        snprintf(err, errsz, "%s: tensor \"%s\" starts beyond its storage", name,
                 gpt2_utf8_shown(t->name, strlen(t->name), shown, sizeof shown));
        return false;
    }
    char why[256];
    if (!gpt2_checkpoint_add(ck, t->name, t->dtype, t->dtype_name, t->n_dims, t->shape, t->stride, s + t->offset * size,
                             (t->storage_numel - t->offset) * size, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", name, why);
        return false;
    }
    return true;
}

/* ---- the zip format ------------------------------------------------------------ */

/* The single top-level folder "X/" that holds X/data.pkl. */
static bool archive_folder(const Zip *z, const char *name, char *folder, size_t size, char *err, size_t errsz) {
    const char *found = NULL;
    for (size_t i = 0; i < z->n; i++) {
        const char *slash = strchr(z->entries[i].name, '/');
        if (!slash || slash == z->entries[i].name) {
            snprintf(err, errsz, "%s: zip entry outside a top-level folder; not a torch.save archive", name);
            return false;
        }
        if (found && (strncmp(found, z->entries[i].name, (size_t)(slash - z->entries[i].name) + 1) != 0)) {
            snprintf(err, errsz, "%s: the archive has more than one top-level folder; not a torch.save archive", name);
            return false;
        }
        if (!found) found = z->entries[i].name;
    }
    const char *slash = found ? strchr(found, '/') : NULL;
    if (!slash || (size_t)(slash - found) + 2 > size) {
        snprintf(err, errsz, "%s: an empty zip archive", name);
        return false;
    }
    memcpy(folder, found, (size_t)(slash - found) + 1);
    folder[slash - found + 1] = '\0';
    return true;
}

static const ZipEntry *entry_in(const Zip *z, const char *folder, const char *rest) {
    char path[1024];
    int k = snprintf(path, sizeof path, "%s%s", folder, rest);
    if (k < 0 || (size_t)k >= sizeof path) return NULL;
    return gpt2_zip_find(z, path);
}

static bool parse_zip(Checkpoint *ck, const uint8_t *b, size_t n, const char *name, char *err, size_t errsz) {
    Zip z;
    char why[512], folder[512];
    if (!gpt2_zip_parse(&z, b, n, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", name, why);
        return false;
    }
    bool ok = archive_folder(&z, name, folder, sizeof folder, err, errsz);
    const ZipEntry *pkl = ok ? entry_in(&z, folder, "data.pkl") : NULL;
    if (ok && (!pkl || !pkl->data)) {
        snprintf(err, errsz, "%s: the archive has no stored data.pkl; not a torch.save archive", name);
        ok = false;
    }
    const ZipEntry *order = ok ? entry_in(&z, folder, "byteorder") : NULL;
    if (order && !(order->data && order->size == 6 && memcmp(order->data, "little", 6) == 0)) {
        snprintf(err, errsz, "%s: written with big-endian storages, which are not supported", name);
        ok = false;
    }
    PickleStateDict sd = {0};
    size_t used;
    if (ok && !gpt2_pickle_state_dict(pkl->data, (size_t)pkl->size, &used, &sd, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", name, why);
        ok = false;
    }
    for (size_t i = 0; ok && i < sd.n; i++) {
        const PickleTensor *t = &sd.tensors[i];
        char rest[600];
        snprintf(rest, sizeof rest, "data/%.500s", t->storage_key);
        const ZipEntry *e = strlen(t->storage_key) < 500 ? entry_in(&z, folder, rest) : NULL;
        if (!e || !e->data) {
            char shown[UTF8_SHOWN], tensor[UTF8_SHOWN];
            snprintf(err, errsz, "%s: storage \"%s\" of tensor \"%s\" is %s", name,
                     gpt2_utf8_shown(t->storage_key, strlen(t->storage_key), shown, sizeof shown),
                     gpt2_utf8_shown(t->name, strlen(t->name), tensor, sizeof tensor),
                     e ? "compressed, which torch.save never does" : "not in the archive");
            ok = false;
            break;
        }
        ok = add_view(ck, t, e->data, e->size, name, err, errsz);
    }
    gpt2_pickle_state_dict_free(&sd);
    gpt2_zip_free(&z);
    return ok;
}

/* ---- the legacy format --------------------------------------------------------- */

static bool parse_legacy(Checkpoint *ck, const uint8_t *b, size_t n, const char *name, char *err, size_t errsz) {
    size_t at = 0, used;
    char why[512];
    if (!gpt2_pickle_legacy_header(b, n, &used, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", name, why);
        return false;
    }
    at += used;
    PickleStateDict sd;
    if (!gpt2_pickle_state_dict(b + at, n - at, &used, &sd, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", name, why);
        return false;
    }
    at += used;
    char **keys = NULL;
    size_t n_keys = 0;
    bool ok = gpt2_pickle_string_list(b + at, n - at, &used, &keys, &n_keys, why, sizeof why);
    if (!ok) snprintf(err, errsz, "%s: %s", name, why);
    at += used;
    /* Each storage: its element count, then its bytes; the element size
     * comes from the tensors that use it. */
    const uint8_t **where = ok ? calloc(n_keys + 1, sizeof *where) : NULL;
    uint64_t *bytes = ok ? calloc(n_keys + 1, sizeof *bytes) : NULL;
    if (ok && (!where || !bytes)) {
        snprintf(err, errsz, "out of memory");
        ok = false;
    }
    for (size_t k = 0; ok && k < n_keys; k++) {
        unsigned size = 0;
        for (size_t i = 0; i < sd.n && !size; i++)
            if (strcmp(sd.tensors[i].storage_key, keys[k]) == 0) size = gpt2_checkpoint_elem_size(sd.tensors[i].dtype);
        char shown[UTF8_SHOWN];
        gpt2_utf8_shown(keys[k], strlen(keys[k]), shown, sizeof shown);
        if (!size) {
            snprintf(err, errsz, "%s: storage \"%s\" is used by no tensor", name, shown);
            ok = false;
            break;
        }
        uint64_t numel = n - at >= 8 ? rd_u64(b + at) : UINT64_MAX;
        if (n - at < 8 || numel > (n - at - 8) / size) {
            snprintf(err, errsz, "%s: storage \"%s\" is cut short (truncated file?)", name, shown);
            ok = false;
            break;
        }
        where[k] = b + at + 8;
        bytes[k] = numel * size;
        at += 8 + (size_t)bytes[k];
    }
    if (ok && at != n) {
        snprintf(err, errsz, "%s: %zu bytes after the last storage belong to nothing", name, n - at);
        ok = false;
    }
    for (size_t i = 0; ok && i < sd.n; i++) {
        const PickleTensor *t = &sd.tensors[i];
        size_t k = 0;
        while (k < n_keys && strcmp(keys[k], t->storage_key) != 0) k++;
        if (k == n_keys) {
            char shown[UTF8_SHOWN], tensor[UTF8_SHOWN];
            snprintf(err, errsz, "%s: storage \"%s\" of tensor \"%s\" is not in the file", name,
                     gpt2_utf8_shown(t->storage_key, strlen(t->storage_key), shown, sizeof shown),
                     gpt2_utf8_shown(t->name, strlen(t->name), tensor, sizeof tensor));
            ok = false;
            break;
        }
        ok = add_view(ck, t, where[k], bytes[k], name, err, errsz);
    }
    free(where);
    free(bytes);
    free(keys);
    gpt2_pickle_state_dict_free(&sd);
    return ok;
}

bool gpt2_torch_checkpoint_parse(Checkpoint *ck, const uint8_t *b, size_t n, const char *name, char *err,
                                 size_t errsz) {
    if (gpt2_zip_is_zip(b, n)) return parse_zip(ck, b, n, name, err, errsz);
    if (n >= sizeof legacy_start && memcmp(b, legacy_start, sizeof legacy_start) == 0)
        return parse_legacy(ck, b, n, name, err, errsz);
    snprintf(err, errsz, "%s: not a file torch.save writes (neither a zip archive nor the legacy format)", name);
    return false;
}

bool gpt2_torch_checkpoint_add(Checkpoint *ck, const char *path, char *err, size_t errsz) {
    const void *p;
    size_t n;
    if (!gpt2_checkpoint_map(ck, path, "a PyTorch checkpoint", &p, &n, err, errsz)) return false;
    return gpt2_torch_checkpoint_parse(ck, p, n, path, err, errsz);
}
