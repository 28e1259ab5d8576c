/* fuzz_batch_line.c - one --batch input line, read as gpt2 reads it.
 *
 * The input is one line of JSON Lines: parsed with the batch-line limit,
 * then walked the way the batch reader walks a request: keys with NUL
 * refused, members in order with a later duplicate replacing an earlier
 * one (which must be what gpt2_json_get finds), numbers read as integers,
 * seeds and doubles, strings as prompts and stop strings.  Aborts on any
 * disagreement, and when the document takes more than 4 bytes per byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static const char *const known[] = {"prompt", "n", "temp", "top_k", "top_p", "seed", "stop", "ignore_eos"};
#define N_KNOWN (sizeof known / sizeof *known)

static void read_value(const JsonValue *v) {
    int64_t x;
    uint64_t u;
    char text[64];
    size_t len;
    switch (v->type) {
    case JSON_NUMBER:
        gpt2_json_as_int(v, INT64_MIN, INT64_MAX, &x);
        gpt2_json_as_u64(v, &u);
        (void)gpt2_json_number(v);
        if (!gpt2_json_number_text(v, text, sizeof text) && v->n < sizeof text) abort();
        break;
    case JSON_STRING: {
        const char *s = gpt2_json_string(v, &len);
        if (!s || s[len] != '\0' || len != v->n) abort();
        break;
    }
    case JSON_ARRAY: {
        JsonIter it = gpt2_json_iter(v);
        const JsonValue *item;
        size_t n = 0;
        while ((item = gpt2_json_next(&it, NULL)) && n < 16) read_value(item), n++;
        break;
    }
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > JSON_MAX_BATCH_LINE) return 0;
    JsonDoc doc;
    char err[256];
    if (!gpt2_json_parse(&doc, (const char *)data, size, err, sizeof err)) return 0;
    if (gpt2_json_doc_bytes(&doc) > 4 * size + 16) abort();
    const JsonValue *root = doc.root, *last[N_KNOWN] = {0};
    if (root->type == JSON_OBJECT) {
        JsonIter it = gpt2_json_iter(root);
        const JsonValue *key, *value;
        size_t count = 0;
        while ((value = gpt2_json_next(&it, &key))) {
            count++;
            size_t len;
            const char *k = gpt2_json_string(key, &len);
            if (!k) abort();
            if (strlen(k) != len) continue; /* refused by the batch reader */
            for (size_t i = 0; i < N_KNOWN; i++)
                if (strcmp(k, known[i]) == 0) last[i] = value;
            read_value(value);
        }
        if (count != gpt2_json_count(root)) abort();
        /* The last duplicate wins, for the reader and for gpt2_json_get. */
        for (size_t i = 0; i < N_KNOWN; i++)
            if (gpt2_json_get(root, known[i]) != last[i]) abort();
    }
    gpt2_json_free(&doc);
    return 0;
}
