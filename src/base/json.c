/* json.c - see json.h.  A recursive-descent reader over a byte range; the
 * recursion depth is bounded by JSON_MAX_DEPTH. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numparse.h"
#include "utf8.h"

struct JsonBlock {
    JsonBlock *next;
    max_align_t data[]; /* the allocation itself */
};

typedef struct {
    const unsigned char *p;   /* next byte */
    const unsigned char *end; /* one past the last byte */
    const unsigned char *start;
    JsonDoc *doc;
    char *err;
    size_t errsz;
    bool failed;
} Parser;

static void fail(Parser *ps, const char *what) {
    if (ps->failed) return;
    ps->failed = true;
    snprintf(ps->err, ps->errsz, "%s at byte %zu", what, (size_t)(ps->p - ps->start));
}

static void *doc_alloc(Parser *ps, size_t n) {
    if (n > SIZE_MAX - sizeof(JsonBlock)) {
        fail(ps, "out of memory");
        return NULL;
    }
    JsonBlock *b = malloc(sizeof(JsonBlock) + n);
    if (!b) {
        fail(ps, "out of memory");
        return NULL;
    }
    b->next = ps->doc->blocks;
    ps->doc->blocks = b;
    return b->data;
}

static void skip_ws(Parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool parse_value(Parser *ps, JsonValue *out, int depth);

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_hex4(Parser *ps, uint32_t *out) {
    if (ps->end - ps->p < 4) {
        fail(ps, "truncated \\u escape");
        return false;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(ps->p[i]);
        if (d < 0) {
            fail(ps, "bad \\u escape");
            return false;
        }
        v = v << 4 | (uint32_t)d;
    }
    ps->p += 4;
    *out = v;
    return true;
}

/* Reads a string starting at the opening quote into freshly allocated
 * NUL-terminated UTF-8. */
static bool parse_string(Parser *ps, const char **bytes, size_t *len) {
    ps->p++; /* opening quote */
    StrBuf sb = {0};
    for (;;) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            goto error;
        }
        unsigned char c = *ps->p;
        if (c == '"') {
            ps->p++;
            break;
        }
        if (c < 0x20) {
            fail(ps, "control character in string");
            goto error;
        }
        if (c == '\\') {
            if (ps->end - ps->p < 2) {
                fail(ps, "unterminated string");
                goto error;
            }
            unsigned char e = ps->p[1];
            ps->p += 2;
            char ch;
            switch (e) {
            case '"': ch = '"'; break;
            case '\\': ch = '\\'; break;
            case '/': ch = '/'; break;
            case 'b': ch = '\b'; break;
            case 'f': ch = '\f'; break;
            case 'n': ch = '\n'; break;
            case 'r': ch = '\r'; break;
            case 't': ch = '\t'; break;
            case 'u': {
                uint32_t cp;
                if (!read_hex4(ps, &cp)) goto error;
                if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    fail(ps, "lone low surrogate in \\u escape");
                    goto error;
                }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
                        fail(ps, "lone high surrogate in \\u escape");
                        goto error;
                    }
                    ps->p += 2;
                    if (!read_hex4(ps, &lo)) goto error;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        fail(ps, "lone high surrogate in \\u escape");
                        goto error;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                char u[4];
                if (!gpt2_strbuf_append(&sb, u, gpt2_utf8_encode(cp, u))) goto oom;
                continue;
            }
            default:
                ps->p -= 1;
                fail(ps, "bad escape in string");
                goto error;
            }
            if (!gpt2_strbuf_append_char(&sb, ch)) goto oom;
            continue;
        }
        /* A run of plain bytes: check it is well-formed UTF-8 as we go. */
        const unsigned char *run = ps->p;
        while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && *ps->p >= 0x20) {
            if (*ps->p < 0x80) {
                ps->p++;
                continue;
            }
            uint32_t cp;
            size_t n = gpt2_utf8_decode(ps->p, (size_t)(ps->end - ps->p), &cp);
            if (n == 0) {
                fail(ps, "invalid UTF-8 in string");
                goto error;
            }
            ps->p += n;
        }
        if (!gpt2_strbuf_append(&sb, run, (size_t)(ps->p - run))) goto oom;
    }
    {
        char *dst = doc_alloc(ps, sb.len + 1);
        if (!dst) goto error;
        if (sb.len) memcpy(dst, sb.data, sb.len);
        dst[sb.len] = '\0';
        *bytes = dst;
        *len = sb.len;
        gpt2_strbuf_free(&sb);
        return true;
    }
oom:
    fail(ps, "out of memory");
error:
    gpt2_strbuf_free(&sb);
    return false;
}

static bool parse_number(Parser *ps, JsonValue *out) {
    const unsigned char *s = ps->p, *p = ps->p, *e = ps->end;
    if (p < e && *p == '-') p++;
    if (p >= e || !(*p >= '0' && *p <= '9')) {
        fail(ps, "bad number");
        return false;
    }
    if (*p == '0') p++;
    else
        while (p < e && *p >= '0' && *p <= '9') p++;
    if (p < e && *p == '.') {
        p++;
        if (p >= e || !(*p >= '0' && *p <= '9')) {
            ps->p = p;
            fail(ps, "bad number");
            return false;
        }
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || !(*p >= '0' && *p <= '9')) {
            ps->p = p;
            fail(ps, "bad number");
            return false;
        }
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    size_t n = (size_t)(p - s);
    char *kept = doc_alloc(ps, n + 1);
    if (!kept) return false;
    memcpy(kept, s, n);
    kept[n] = '\0';
    out->type = JSON_NUMBER;
    out->u.number.value = strtod(kept, NULL); /* overflow gives +-HUGE_VAL */
    out->u.number.text = kept;
    out->u.number.len = n;
    ps->p = p;
    return true;
}

static bool literal(Parser *ps, const char *word, JsonType type, JsonValue *out) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        fail(ps, "unexpected character");
        return false;
    }
    ps->p += n;
    out->type = type;
    return true;
}

/* Growable scratch vector used while a container is being read. */
typedef struct {
    void *items;
    size_t count, cap, item_size;
} Vec;

static void *vec_push(Parser *ps, Vec *v) {
    if (v->count == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *p = realloc(v->items, cap * v->item_size);
        if (!p) {
            fail(ps, "out of memory");
            return NULL;
        }
        v->items = p;
        v->cap = cap;
    }
    return (char *)v->items + v->item_size * v->count++;
}

static void *vec_finish(Parser *ps, Vec *v) {
    void *dst = NULL;
    if (v->count) {
        dst = doc_alloc(ps, v->count * v->item_size);
        if (dst) memcpy(dst, v->items, v->count * v->item_size);
    }
    free(v->items);
    return dst;
}

static bool parse_array(Parser *ps, JsonValue *out, int depth) {
    Vec v = {.item_size = sizeof(JsonValue)};
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            JsonValue *item = vec_push(ps, &v);
            if (!item || !parse_value(ps, item, depth + 1)) goto error;
            skip_ws(ps);
            if (ps->p >= ps->end) {
                fail(ps, "unterminated array");
                goto error;
            }
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == ']') {
                ps->p++;
                break;
            }
            fail(ps, "expected ',' or ']'");
            goto error;
        }
    }
    out->type = JSON_ARRAY;
    out->u.array.count = v.count;
    out->u.array.items = vec_finish(ps, &v);
    return !ps->failed;
error:
    free(v.items);
    return false;
}

static bool parse_object(Parser *ps, JsonValue *out, int depth) {
    Vec v = {.item_size = sizeof(JsonMember)};
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, ps->p >= ps->end ? "unterminated object" : "expected a string key");
                goto error;
            }
            JsonMember *m = vec_push(ps, &v);
            if (!m || !parse_string(ps, &m->key, &m->key_len)) goto error;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, "expected ':'");
                goto error;
            }
            ps->p++;
            if (!parse_value(ps, &m->value, depth + 1)) goto error;
            skip_ws(ps);
            if (ps->p >= ps->end) {
                fail(ps, "unterminated object");
                goto error;
            }
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == '}') {
                ps->p++;
                break;
            }
            fail(ps, "expected ',' or '}'");
            goto error;
        }
    }
    out->type = JSON_OBJECT;
    out->u.object.count = v.count;
    out->u.object.members = vec_finish(ps, &v);
    return !ps->failed;
error:
    free(v.items);
    return false;
}

static bool parse_value(Parser *ps, JsonValue *out, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        fail(ps, "nesting too deep");
        return false;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, "unexpected end of input");
        return false;
    }
    switch (*ps->p) {
    case '{': return parse_object(ps, out, depth);
    case '[': return parse_array(ps, out, depth);
    case '"': out->type = JSON_STRING; return parse_string(ps, &out->u.string.bytes, &out->u.string.len);
    case 't': return literal(ps, "true", JSON_TRUE, out);
    case 'f': return literal(ps, "false", JSON_FALSE, out);
    case 'n': return literal(ps, "null", JSON_NULL, out);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps, out);
        fail(ps, "unexpected character");
        return false;
    }
}

bool gpt2_json_parse(JsonDoc *doc, const char *text, size_t len, char *err, size_t errsz) {
    memset(doc, 0, sizeof *doc);
    Parser ps = {.p = (const unsigned char *)text,
                 .end = (const unsigned char *)text + len,
                 .start = (const unsigned char *)text,
                 .doc = doc,
                 .err = err,
                 .errsz = errsz};
    if (parse_value(&ps, &doc->root, 1)) {
        skip_ws(&ps);
        if (ps.p != ps.end) fail(&ps, "trailing characters after the JSON value");
    }
    if (ps.failed) {
        gpt2_json_free(doc);
        return false;
    }
    return true;
}

void gpt2_json_free(JsonDoc *doc) {
    JsonBlock *b = doc->blocks;
    while (b) {
        JsonBlock *next = b->next;
        free(b);
        b = next;
    }
    memset(doc, 0, sizeof *doc);
}

const JsonValue *gpt2_json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = obj->u.object.count; i-- > 0;) {
        const JsonMember *m = &obj->u.object.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return &m->value;
    }
    return NULL;
}

/* The number's text is valid JSON, so gpt2_parse_int refuses exactly what is
 * not an integer: a fraction or an exponent stops it before the end. */
bool gpt2_json_as_int(const JsonValue *v, int64_t lo, int64_t hi, int64_t *out) {
    return v && v->type == JSON_NUMBER && gpt2_parse_int(v->u.number.text, lo, hi, out);
}

bool gpt2_json_string_is(const JsonValue *v, const char *lit) {
    return v && v->type == JSON_STRING && v->u.string.len == strlen(lit) &&
           memcmp(v->u.string.bytes, lit, v->u.string.len) == 0;
}

bool gpt2_json_append_string(StrBuf *b, const void *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    StrBuf repaired = {0};
    const uint8_t *p = s;
    if (!gpt2_utf8_valid(p, n)) {
        if (!gpt2_utf8_append_repaired(&repaired, p, n)) {
            gpt2_strbuf_free(&repaired);
            return false;
        }
        p = (const uint8_t *)repaired.data;
        n = repaired.len;
    }
    bool ok = gpt2_strbuf_append_char(b, '"');
    size_t run = 0; /* start of the pending run of bytes needing no escape */
    for (size_t i = 0; ok && i < n; i++) {
        uint8_t c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) continue;
        ok = gpt2_strbuf_append(b, p + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default: esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
        }
        if (ok) ok = gpt2_strbuf_append_str(b, esc);
    }
    if (ok) ok = gpt2_strbuf_append(b, p + run, n - run);
    if (ok) ok = gpt2_strbuf_append_char(b, '"');
    gpt2_strbuf_free(&repaired);
    return ok;
}
