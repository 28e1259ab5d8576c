/* fuzz_safetensors.c - libFuzzer target for the safetensors and JSON readers.
 *
 * The first byte of the input chooses what the rest is:
 *   even: a safetensors file, given to gpt2_safetensors_parse from memory.  When
 *         it parses, every tensor is looked up by name and read into floats
 *         when its dtype allows, and the reader's promises are checked: each
 *         tensor lies inside the input, its byte count is its element count
 *         times its element size, the tensors are sorted by unique names.
 *   odd:  JSON text, given to gpt2_json_parse.  When it parses, the document is
 *         walked: every number through gpt2_json_as_int, every string through
 *         gpt2_json_append_string, every object key through gpt2_json_get.
 * Both readers take a byte range, so the input is copied to an allocation
 * of exactly its size: ASan then catches a read one byte past the end.
 *
 * Seeds: fuzz/corpus/safetensors/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "safetensors.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned element_size(StDType t, uint64_t n_bytes, uint64_t n_elems) {
    switch (t) {
    case ST_F64:
    case ST_I64: return 8;
    case ST_F32:
    case ST_I32: return 4;
    case ST_F16:
    case ST_BF16:
    case ST_I16: return 2;
    case ST_I8:
    case ST_U8:
    case ST_BOOL: return 1;
    default: return n_elems ? (unsigned)(n_bytes / n_elems) : 0; /* U16 and the like: no fixed answer here */
    }
}

static void check_safetensors(const uint8_t *bytes, size_t n) {
    SafeTensors st;
    char err[512];
    if (!gpt2_safetensors_parse(&st, bytes, n, err, sizeof err)) {
        if (!memchr(err, '\0', sizeof err) || strchr(err, '\n')) abort(); /* one terminated line */
        return;
    }
    for (size_t i = 0; i < st.n_tensors; i++) {
        const StTensor *t = &st.tensors[i];
        if (t->data < bytes || t->n_bytes > n || (size_t)(t->data - bytes) > n - t->n_bytes) abort();
        unsigned size = element_size(t->dtype, t->n_bytes, t->n_elems);
        if (t->n_elems && t->n_elems * size != t->n_bytes) abort();
        if (!t->n_elems && t->n_bytes) abort();
        if (i && strcmp(st.tensors[i - 1].name, t->name) >= 0) abort();
        if (gpt2_safetensors_find(&st, t->name) != t) abort();
        float *out = malloc(t->n_elems ? t->n_elems * sizeof *out : 1);
        if (!out) abort();
        bool readable = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        if (gpt2_safetensors_read_f32(t, out) != readable) abort();
        free(out);
    }
    if (gpt2_safetensors_find(&st, "no such tensor \x01")) abort();
    gpt2_safetensors_close(&st);
}

static void walk(const JsonValue *v, StrBuf *sb) {
    int64_t x;
    uint64_t u;
    char text[64];
    size_t len, i = 0;
    const char *s;
    JsonIter it = gpt2_json_iter(v);
    const JsonValue *key, *item;
    switch (v->type) {
    case JSON_NUMBER:
        gpt2_json_as_int(v, INT64_MIN, INT64_MAX, &x);
        gpt2_json_as_u64(v, &u);
        gpt2_json_number(v);
        gpt2_json_number_text(v, text, sizeof text);
        break;
    case JSON_STRING:
        s = gpt2_json_string(v, &len);
        if (!s || strlen(s) > len || s[len] != '\0') abort();
        if (!gpt2_json_append_string(sb, s, len)) abort();
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        while ((item = gpt2_json_next(&it, &key))) {
            /* The last member with a key wins, and it is found (for the
             * first few members: gpt2_json_get is a linear scan). */
            if (key && (s = gpt2_json_string(key, &len)) && strlen(s) == len && i < 8 && !gpt2_json_get(v, s)) abort();
            walk(item, sb);
            i++;
        }
        if (i != gpt2_json_count(v)) abort();
        break;
    default: break;
    }
}

static void check_json(const uint8_t *bytes, size_t n) {
    JsonDoc doc;
    char err[256];
    if (!gpt2_json_parse(&doc, (const char *)bytes, n, err, sizeof err)) return;
    StrBuf sb = {0};
    /* The document holds at most 4 bytes per byte of text (plus its root). */
    if (gpt2_json_doc_bytes(&doc) > 4 * n + 16) abort();
    walk(doc.root, &sb);
    /* What the writer wrote parses back to a string. */
    if (sb.len && doc.root->type == JSON_STRING) {
        JsonDoc again;
        if (!gpt2_json_parse(&again, sb.data, sb.len, err, sizeof err)) abort();
        gpt2_json_free(&again);
    }
    gpt2_strbuf_free(&sb);
    gpt2_json_free(&doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t n = size - 1;
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) return 0;
    if (n) memcpy(copy, data + 1, n);
    if (data[0] % 2 == 0) check_safetensors(copy, n);
    else check_json(copy, n);
    free(copy);
    return 0;
}
