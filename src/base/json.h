/* json.h - a strict JSON reader and the JSON string writer.
 *
 * Owns parsing of every JSON text the program meets: config.json,
 * vocab.json, safetensors headers, batch input lines.  The reader is strict
 * (RFC 8259): it refuses trailing garbage, bad escapes, lone surrogates,
 * raw control characters, invalid UTF-8 and nesting deeper than
 * JSON_MAX_DEPTH, and says where.  Strings are decoded to UTF-8 and may hold
 * NUL bytes, so every string carries its length.
 *
 * A parsed document lives in one JsonDoc; every value points into it and is
 * freed with it.
 */
#ifndef GPT2_JSON_H
#define GPT2_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue JsonValue;
typedef struct JsonMember JsonMember;

struct JsonValue {
    JsonType type;
    union {
        struct {
            double value;     /* nearest double */
            const char *text; /* the number as written, NUL-terminated */
            size_t len;
        } number;
        struct {
            const char *bytes; /* decoded UTF-8, NUL-terminated, may contain NUL */
            size_t len;
        } string;
        struct {
            JsonValue *items; /* [count] */
            size_t count;
        } array;
        struct {
            JsonMember *members; /* [count], in document order */
            size_t count;
        } object;
    } u;
};

struct JsonMember {
    const char *key; /* decoded, NUL-terminated */
    size_t key_len;
    JsonValue value;
};

typedef struct JsonBlock JsonBlock;
typedef struct {
    JsonValue root;
    JsonBlock *blocks; /* every allocation of the parse, freed together */
} JsonDoc;

/* Parses text[0..len) as one JSON value, optionally surrounded by
 * whitespace.  Returns true and fills doc, or returns false with a one-line
 * message in err (doc is then empty and need not be freed). */
bool gpt2_json_parse(JsonDoc *doc, const char *text, size_t len, char *err, size_t errsz);
void gpt2_json_free(JsonDoc *doc);

/* Object member by key, or NULL.  Keys are compared byte for byte; when a
 * key appears twice the last one wins, as in most readers. */
const JsonValue *gpt2_json_get(const JsonValue *obj, const char *key);

/* The value as an integer when it is a number written without fraction or
 * exponent and within [lo, hi]. */
bool gpt2_json_as_int(const JsonValue *v, int64_t lo, int64_t hi, int64_t *out);

/* Whether v is a string equal to lit, byte for byte: "a\u0000b" is not "a". */
bool gpt2_json_string_is(const JsonValue *v, const char *lit);

/* Appends s[0..n) as a quoted JSON string.  Ill-formed UTF-8 becomes U+FFFD,
 * control characters are escaped, everything else is written as is. */
bool gpt2_json_append_string(StrBuf *b, const void *s, size_t n);

#endif
