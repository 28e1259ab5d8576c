/* fuzz_torch.c - libFuzzer target for the readers of torch.save files.
 *
 * Each input goes, from memory, through every reader of torch_checkpoint.h
 * and below, each refusing quickly what is not its format:
 *   gpt2_torch_checkpoint_parse, as a pytorch_model.bin: the zip archive
 *     (zip.h, then the state dict's pickle and its storages) or the legacy
 *     format (three header pickles, the state dict, the storage keys and the
 *     storages); what it accepts is sealed and every tensor read (see
 *     fuzz_checkpoint.h);
 *   gpt2_zip_parse: every entry's name is found by gpt2_zip_find, and a
 *     stored entry's data lies inside the archive;
 *   gpt2_pickle_state_dict on the bare pickle: *used never passes the
 *     input, a tensor has at most PICKLE_MAX_DIMS dimensions, a storage
 *     key and a known element type;
 *   gpt2_pickle_legacy_header and gpt2_pickle_string_list, each on the input.
 * Every refusal is one non-empty line.  The input is copied to an
 * allocation of exactly its size, so ASan catches a read past its end.
 *
 * Seeds (fuzz/corpus/torch/, written by fuzz/make_seeds.py): zip archives
 * in f32, f16 (protocol 4, zip64 records, data descriptors) and bf16 (one
 * storage for all tensors, a parameter), views with offsets and transposed
 * strides, a whole 2-layer model, the legacy format (a storage per tensor,
 * and one for all), and bare pickles
 * (state dicts, a list of storage keys).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_checkpoint.h"
#include "pickle.h"
#include "torch_checkpoint.h"
#include "zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_torch(const uint8_t *b, size_t n) {
    Checkpoint ck = {0};
    char err[512];
    snprintf(ck.label, sizeof ck.label, "pytorch_model.bin");
    if (gpt2_torch_checkpoint_parse(&ck, b, n, "pytorch_model.bin", err, sizeof err)) {
        require(gpt2_torch_is_torch(b, n));
        check_checkpoint(&ck, b, n);
    } else {
        check_refusal(err, sizeof err);
    }
    gpt2_checkpoint_close(&ck);
}

static void check_zip(const uint8_t *b, size_t n) {
    Zip z;
    char err[512];
    if (!gpt2_zip_parse(&z, b, n, err, sizeof err)) {
        check_refusal(err, sizeof err);
        return;
    }
    for (size_t i = 0; i < z.n; i++) {
        const ZipEntry *e = &z.entries[i];
        require(e->name != NULL && gpt2_zip_find(&z, e->name) == e);
        require(e->data == NULL || (e->data >= b && e->size <= n && (size_t)(e->data - b) <= n - e->size));
        require(e->data != NULL || e->method != 0);
    }
    gpt2_zip_free(&z);
}

static void check_pickle(const uint8_t *b, size_t n) {
    PickleStateDict sd;
    size_t used = 0;
    char err[512];
    if (!gpt2_pickle_state_dict(b, n, &used, &sd, err, sizeof err)) {
        require(used <= n);
        check_refusal(err, sizeof err);
        return;
    }
    require(used >= 1 && used <= n && b[used - 1] == '.');
    for (size_t i = 0; i < sd.n; i++) {
        const PickleTensor *t = &sd.tensors[i];
        require(t->name && t->storage_key && t->storage_key[0] != '\0');
        require(t->n_dims >= 0 && t->n_dims <= PICKLE_MAX_DIMS);
        require(gpt2_checkpoint_elem_size(t->dtype) != 0 && t->dtype_name != NULL);
    }
    gpt2_pickle_state_dict_free(&sd);
}

/* The two other pickles of the legacy format, read on their own. */
static void check_legacy_parts(const uint8_t *b, size_t n) {
    size_t used = 0;
    char err[512];
    if (gpt2_pickle_legacy_header(b, n, &used, err, sizeof err)) require(used <= n);
    else check_refusal(err, sizeof err);
    char **keys;
    size_t n_keys;
    used = 0;
    if (!gpt2_pickle_string_list(b, n, &used, &keys, &n_keys, err, sizeof err)) {
        require(used <= n);
        check_refusal(err, sizeof err);
        return;
    }
    require(used <= n);
    for (size_t i = 0; i < n_keys; i++) require(keys[i] != NULL && strlen(keys[i]) < n);
    free(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    check_torch(copy, size);
    check_zip(copy, size);
    check_pickle(copy, size);
    check_legacy_parts(copy, size);
    free(copy);
    return 0;
}
