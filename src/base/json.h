/* json.h - a strict JSON reader and the JSON string writer.
 *
 * Owns parsing of every JSON text the program meets: config.json,
 * vocab.json, index files, safetensors headers, batch input lines.  The
 * reader is strict (RFC 8259): it refuses trailing garbage, bad escapes,
 * lone surrogates, raw control characters, invalid UTF-8 and nesting deeper
 * than JSON_MAX_DEPTH, and says where.  Strings are decoded to UTF-8 and may
 * hold NUL bytes, so every string carries its length.
 *
 * Memory: a parsed document is one allocation of at most 4 bytes per byte
 * of input (each value is an 8-byte node in document order; strings and
 * numbers that are not small integers keep their decoded text after the
 * nodes).  It does not point into the input, which may be freed after the
 * parse.  Containers are walked with JsonIter; gpt2_json_at and
 * gpt2_json_get are linear scans.
 *
 * Duplicate keys are kept: gpt2_json_get returns the LAST member with the
 * key, and readers that walk the members must let a later duplicate
 * override an earlier one.
 *
 * Size limits: gpt2_json_parse refuses a text over JSON_MAX_TEXT.  Each
 * kind of input has its own, smaller limit, checked by its reader before
 * the text is read or parsed.
 */
#ifndef GPT2_JSON_H
#define GPT2_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define JSON_MAX_DEPTH 64

#define JSON_MAX_TEXT (256u << 20)              /* any JSON text given to gpt2_json_parse */
#define JSON_MAX_CONFIG (1u << 20)              /* config.json (GPT-2's: under 1 KiB) */
#define JSON_MAX_VOCAB (64u << 20)              /* vocab.json, tokenizer.json (GPT-2's: about 1 MiB) */
#define JSON_MAX_INDEX (16u << 20)              /* *.index.json of a sharded checkpoint */
#define JSON_MAX_BATCH_LINE (16u << 20)         /* one --batch input line */
#define JSON_MAX_SAFETENSORS_HEADER (16u << 20) /* a safetensors header (GPT-2's: about 15 KiB) */

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

/* One node.  Only `type` is for readers; the rest is read through the
 * functions below. */
typedef struct JsonValue {
    unsigned type : 3;  /* JsonType */
    unsigned small : 1; /* a number held in aux as an int32 */
    unsigned n : 28;    /* string or number text length; container count */
    uint32_t aux;       /* byte offset from this node to its text; container: nodes inside it */
} JsonValue;

typedef struct {
    const JsonValue *root;
    void *block; /* the document's one allocation */
    size_t size; /* its bytes */
} JsonDoc;

/* Parses text[0..len) as one JSON value, optionally surrounded by
 * whitespace.  Returns true and fills doc, or returns false with a one-line
 * message in err (doc is then empty and need not be freed). */
bool gpt2_json_parse(JsonDoc *doc, const char *text, size_t len, char *err, size_t errsz);
void gpt2_json_free(JsonDoc *doc);

/* Bytes held by doc (for tests and --verbose). */
size_t gpt2_json_doc_bytes(const JsonDoc *doc);

/* A string's decoded bytes, NUL-terminated (they may also contain NUL), and
 * their count in *len (len may be NULL); NULL when v is not a string. */
const char *gpt2_json_string(const JsonValue *v, size_t *len);

/* A number's nearest double (overflow gives +-HUGE_VAL); 0 when v is not a
 * number. */
double gpt2_json_number(const JsonValue *v);

/* The number as written, NUL-terminated, in buf[bufsz] (at least 16 bytes);
 * false when v is not a number or it does not fit. */
bool gpt2_json_number_text(const JsonValue *v, char *buf, size_t bufsz);

/* Items of an array or members of an object; 0 for anything else. */
size_t gpt2_json_count(const JsonValue *v);

/* Item i of an array, or NULL.  A linear scan: walk with JsonIter. */
const JsonValue *gpt2_json_at(const JsonValue *array, size_t i);

/* Walks an array's items or an object's members in document order:
 *     JsonIter it = gpt2_json_iter(obj);
 *     const JsonValue *key, *value;
 *     while ((value = gpt2_json_next(&it, &key))) ...
 * key is set to the member's key (a string node) for objects, NULL for
 * arrays; pass NULL when it is not wanted. */
typedef struct {
    const JsonValue *at, *end;
    bool object;
} JsonIter;
JsonIter gpt2_json_iter(const JsonValue *container);
const JsonValue *gpt2_json_next(JsonIter *it, const JsonValue **key);

/* Object member by key, or NULL.  Keys are compared byte for byte; when a
 * key appears twice the last one wins. */
const JsonValue *gpt2_json_get(const JsonValue *obj, const char *key);

/* The value as an integer when it is a number written without fraction or
 * exponent and within [lo, hi]. */
bool gpt2_json_as_int(const JsonValue *v, int64_t lo, int64_t hi, int64_t *out);

/* The value as a whole number from 0 to UINT64_MAX. */
bool gpt2_json_as_u64(const JsonValue *v, uint64_t *out);

/* Whether v is a string equal to lit, byte for byte: "a\u0000b" is not "a". */
bool gpt2_json_string_is(const JsonValue *v, const char *lit);

/* Appends s[0..n) as a quoted JSON string.  Ill-formed UTF-8 becomes U+FFFD,
 * control characters are escaped, everything else is written as is. */
bool gpt2_json_append_string(StrBuf *b, const void *s, size_t n);

#endif
