/* fuzz_index.c - libFuzzer target for the index of a sharded checkpoint.
 *
 * Each input is the text of an index (model.safetensors.index.json or
 * pytorch_model.bin.index.json), given from memory to
 * gpt2_shards_add_index_text twice: as a safetensors index and as a torch
 * one.  The shards it may name are real files: at start-up the target
 * makes a folder of its own under /tmp (mkdtemp; removed at exit) holding
 *   model-00001-of-00002.safetensors    h.0.ln_1.weight [4], wte.weight [2, 4]
 *   model-00002-of-00002.safetensors    ln_f.bias [4]
 *   pytorch_model-00001-of-00002.bin    the same two, in torch's legacy format
 *   pytorch_model-00002-of-00002.bin    the same one
 * (fuzz/make_seeds.py writes the seeds against these names).  A refusal is
 * one non-empty line; an index that is accepted has every tensor of its
 * weight_map in the checkpoint, found by name, and nothing else, and each
 * tensor reads (fuzz_checkpoint.h).
 *
 * Seeds: fuzz/corpus/index/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_checkpoint.h"
#include "json.h"
#include "model_format.h" /* wr_u32, wr_u64 */
#include "shards.h"
#include "strbuf.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *name;
    int n_dims;
    uint32_t shape[2];
} ShardTensor;

static const ShardTensor first[] = {{"h.0.ln_1.weight", 1, {4, 0}}, {"wte.weight", 2, {2, 4}}};
static const ShardTensor second[] = {{"ln_f.bias", 1, {4, 0}}};

static const struct {
    const char *file;
    const ShardTensor *tensors;
    size_t n;
} shards[] = {
    {"model-00001-of-00002.safetensors", first, 2},
    {"model-00002-of-00002.safetensors", second, 1},
    {"pytorch_model-00001-of-00002.bin", first, 2},
    {"pytorch_model-00002-of-00002.bin", second, 1},
};
#define N_SHARDS (sizeof shards / sizeof *shards)

static char folder[] = "/tmp/gpt2-fuzz-index-XXXXXX";

static uint32_t numel(const ShardTensor *t) { return t->n_dims == 1 ? t->shape[0] : t->shape[0] * t->shape[1]; }

static void append_values(StrBuf *b, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        float f = (float)i / 8 - 0.25f;
        require(gpt2_strbuf_append(b, &f, sizeof f));
    }
}

static void safetensors_file(StrBuf *out, const ShardTensor *t, size_t n) {
    StrBuf header = {0};
    uint64_t at = 0;
    require(gpt2_strbuf_append_char(&header, '{'));
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)numel(&t[i]) * 4;
        char shape[32];
        if (t[i].n_dims == 1) snprintf(shape, sizeof shape, "%u", t[i].shape[0]);
        else snprintf(shape, sizeof shape, "%u,%u", t[i].shape[0], t[i].shape[1]);
        require(gpt2_strbuf_printf(&header, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%llu,%llu]}",
                                   i ? "," : "", t[i].name, shape, (unsigned long long)at,
                                   (unsigned long long)(at + bytes)));
        at += bytes;
    }
    require(gpt2_strbuf_append_char(&header, '}'));
    uint8_t len[8];
    wr_u64(len, header.len);
    require(gpt2_strbuf_append(out, len, 8) && gpt2_strbuf_append(out, header.data, header.len));
    for (size_t i = 0; i < n; i++) append_values(out, numel(&t[i]));
    gpt2_strbuf_free(&header);
}

/* Pickle opcodes, protocol 2, as torch.save's legacy format writes them. */
static void pk(StrBuf *b, const char *bytes, size_t n) { require(gpt2_strbuf_append(b, bytes, n)); }

static void pk_str(StrBuf *b, const char *s) {
    uint8_t len[4];
    wr_u32(len, (uint32_t)strlen(s));
    pk(b, "X", 1);
    pk(b, (const char *)len, 4);
    pk(b, s, strlen(s));
}

static void pk_int(StrBuf *b, uint32_t x) { /* BININT1: x < 256 */
    char op[2] = {'K', (char)x};
    pk(b, op, 2);
}

static void pk_dims(StrBuf *b, const uint32_t *d, int n) {
    for (int i = 0; i < n; i++) pk_int(b, d[i]);
    pk(b, n == 1 ? "\x85" : "\x86", 1);
}

static void torch_file(StrBuf *out, const ShardTensor *t, size_t n) {
    static const char magic[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
    pk(out, magic, sizeof magic - 1);
    pk(out, "\x80\x02M\xe9\x03.", 6); /* protocol version 1001 */
    pk(out, "\x80\x02}.", 4);         /* system information */
    pk(out, "\x80\x02}(", 4);
    for (size_t i = 0; i < n; i++) {
        char key[2] = {(char)('0' + i), '\0'};
        uint32_t stride[2] = {t[i].n_dims == 1 ? 1 : t[i].shape[1], 1};
        pk_str(out, t[i].name);
        pk(out, "ctorch._utils\n_rebuild_tensor_v2\n((", 35);
        pk_str(out, "storage");
        pk(out, "ctorch\nFloatStorage\n", 20);
        pk_str(out, key);
        pk_str(out, "cpu");
        pk_int(out, numel(&t[i]));
        pk(out, "NtQ", 3);
        pk_int(out, 0);
        pk_dims(out, t[i].shape, t[i].n_dims);
        pk_dims(out, stride, t[i].n_dims);
        pk(out, "\x89}tR", 4);
    }
    pk(out, "u.", 2);
    pk(out, "\x80\x02](", 4);
    for (size_t i = 0; i < n; i++) {
        char key[2] = {(char)('0' + i), '\0'};
        pk_str(out, key);
    }
    pk(out, "e.", 2);
    for (size_t i = 0; i < n; i++) {
        uint8_t count[8];
        wr_u64(count, numel(&t[i]));
        pk(out, (const char *)count, 8);
        append_values(out, numel(&t[i]));
    }
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", folder, name); }

static void remove_folder(void) {
    char path[256];
    for (size_t i = 0; i < N_SHARDS; i++) {
        path_of(path, sizeof path, shards[i].file);
        unlink(path);
    }
    rmdir(folder);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    require(mkdtemp(folder) != NULL);
    atexit(remove_folder);
    for (size_t i = 0; i < N_SHARDS; i++) {
        StrBuf b = {0};
        char path[256];
        if (strstr(shards[i].file, ".safetensors")) safetensors_file(&b, shards[i].tensors, shards[i].n);
        else torch_file(&b, shards[i].tensors, shards[i].n);
        path_of(path, sizeof path, shards[i].file);
        FILE *f = fopen(path, "wb");
        require(f && fwrite(b.data, 1, b.len, f) == b.len && fclose(f) == 0);
        gpt2_strbuf_free(&b);
    }
    return 0;
}

/* Every key of the index's weight_map names a tensor of ck. */
static void check_listed(const Checkpoint *ck, const char *text, size_t len) {
    JsonDoc doc;
    char err[256];
    require(gpt2_json_parse(&doc, text, len, err, sizeof err));
    const JsonValue *map = gpt2_json_get(doc.root, "weight_map");
    require(map && map->type == JSON_OBJECT);
    JsonIter it = gpt2_json_iter(map);
    const JsonValue *key;
    size_t listed = 0;
    while (gpt2_json_next(&it, &key)) {
        require(gpt2_checkpoint_find(ck, gpt2_json_string(key, NULL)) != NULL);
        listed++;
    }
    require(listed >= ck->n);
    gpt2_json_free(&doc);
}

static void add_index(const char *text, size_t len, bool torch) {
    Checkpoint ck = {0};
    char path[256], err[1024];
    path_of(path, sizeof path, torch ? "pytorch_model.bin.index.json" : "model.safetensors.index.json");
    snprintf(ck.label, sizeof ck.label, "%s", torch ? "pytorch_model.bin.index.json" : "model.safetensors.index.json");
    if (gpt2_shards_add_index_text(&ck, text, len, path, torch, err, sizeof err)) {
        check_listed(&ck, text, len);
        check_checkpoint(&ck, NULL, 0);
    } else {
        check_refusal(err, sizeof err);
    }
    gpt2_checkpoint_close(&ck);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    add_index(copy, size, false);
    add_index(copy, size, true);
    free(copy);
    return 0;
}
