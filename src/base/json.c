/* json.c - see json.h.  A recursive-descent reader over a byte range; the
 * recursion depth is bounded by JSON_MAX_DEPTH.
 *
 * The text is read twice: the first pass checks it and counts the nodes and
 * the bytes of kept text, the second fills one allocation of exactly that
 * size.  Nothing else is allocated, so the document is also the peak. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "numparse.h"
#include "utf8.h"

typedef struct {
    const unsigned char *p;   /* next byte */
    const unsigned char *end; /* one past the last byte */
    const unsigned char *start;
    JsonValue *nodes; /* second pass: [n_nodes] */
    char *text;       /* second pass: [n_text] */
    size_t n_nodes;   /* nodes so far */
    size_t n_text;    /* kept text bytes so far */
    char *err;
    size_t errsz;
    bool failed;
} Parser;

static void fail(Parser *ps, const char *what) {
    if (ps->failed) return;
    ps->failed = true;
    snprintf(ps->err, ps->errsz, "%s at byte %zu", what, (size_t)(ps->p - ps->start));
}

static void skip_ws(Parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

/* A new node of the given type; NULL in the first pass. */
static JsonValue *new_node(Parser *ps, JsonType type) {
    size_t i = ps->n_nodes++;
    if (!ps->nodes) return NULL;
    JsonValue *v = &ps->nodes[i];
    memset(v, 0, sizeof *v);
    v->type = type;
    return v;
}

/* Keeps n bytes of text (plus a NUL) for node v: returns where to write
 * them, or NULL in the first pass. */
static char *keep_text(Parser *ps, JsonValue *v, size_t n) {
    size_t at = ps->n_text;
    ps->n_text += n + 1;
    if (!v) return NULL;
    char *dst = ps->text + at;
    v->n = (unsigned)n;
    v->aux = (uint32_t)(dst - (char *)v);
    dst[n] = '\0';
    return dst;
}

static const char *text_of(const JsonValue *v) { return (const char *)v + v->aux; }

static bool parse_value(Parser *ps, int depth);

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

/* One escape after the backslash at ps->p: its UTF-8 bytes into u. */
static size_t read_escape(Parser *ps, char u[4]) {
    if (ps->end - ps->p < 2) {
        fail(ps, "unterminated string");
        return 0;
    }
    unsigned char e = ps->p[1];
    ps->p += 2;
    switch (e) {
    case '"': u[0] = '"'; return 1;
    case '\\': u[0] = '\\'; return 1;
    case '/': u[0] = '/'; return 1;
    case 'b': u[0] = '\b'; return 1;
    case 'f': u[0] = '\f'; return 1;
    case 'n': u[0] = '\n'; return 1;
    case 'r': u[0] = '\r'; return 1;
    case 't': u[0] = '\t'; return 1;
    case 'u': break;
    default:
        ps->p -= 1;
        fail(ps, "bad escape in string");
        return 0;
    }
    uint32_t cp;
    if (!read_hex4(ps, &cp)) return 0;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail(ps, "lone low surrogate in \\u escape");
        return 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') {
            fail(ps, "lone high surrogate in \\u escape");
            return 0;
        }
        ps->p += 2;
        if (!read_hex4(ps, &lo)) return 0;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            fail(ps, "lone high surrogate in \\u escape");
            return 0;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    return gpt2_utf8_encode(cp, u);
}

/* Checks the string starting at the opening quote at ps->p and returns its
 * decoded length; writes the decoded bytes to dst unless it is NULL.  The
 * decoded string is never longer than the quoted one. */
static bool scan_string(Parser *ps, char *dst, size_t *len) {
    ps->p++; /* opening quote */
    size_t n = 0;
    for (;;) {
        if (ps->p >= ps->end) {
            fail(ps, "unterminated string");
            return false;
        }
        unsigned char c = *ps->p;
        if (c == '"') {
            ps->p++;
            *len = n;
            return true;
        }
        if (c < 0x20) {
            fail(ps, "control character in string");
            return false;
        }
        if (c == '\\') {
            char u[4];
            size_t k = read_escape(ps, u);
            if (k == 0) return false;
            if (dst) memcpy(dst + n, u, k);
            n += k;
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
            size_t k = gpt2_utf8_decode(ps->p, (size_t)(ps->end - ps->p), &cp);
            if (k == 0) {
                fail(ps, "invalid UTF-8 in string");
                return false;
            }
            ps->p += k;
        }
        if (dst) memcpy(dst + n, run, (size_t)(ps->p - run));
        n += (size_t)(ps->p - run);
    }
}

/* A string node: the first pass learns its length, the second decodes it
 * into the kept text. */
static bool parse_string(Parser *ps) {
    JsonValue *v = new_node(ps, JSON_STRING);
    size_t n;
    if (!scan_string(ps, v ? ps->text + ps->n_text : NULL, &n)) return false;
    keep_text(ps, v, n);
    return true;
}

/* An integer written plainly ("-12", not "-0", "1e3" or "1.0") that fits
 * in an int32 is kept in its node rather than as text. */
static bool small_int(const unsigned char *s, size_t n, int32_t *out) {
    bool neg = n > 0 && s[0] == '-';
    if (n - neg == 0 || n - neg > 10 || (neg && n == 2 && s[1] == '0')) return false;
    int64_t x = 0;
    for (size_t i = neg; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        x = x * 10 + (s[i] - '0');
    }
    if (neg) x = -x;
    if (x < INT32_MIN || x > INT32_MAX) return false;
    *out = (int32_t)x;
    return true;
}

static bool parse_number(Parser *ps) {
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
    ps->p = p;
    JsonValue *v = new_node(ps, JSON_NUMBER);
    int32_t x;
    if (small_int(s, n, &x)) {
        if (v) v->small = 1, v->n = (unsigned)n, v->aux = (uint32_t)x;
        return true;
    }
    char *dst = keep_text(ps, v, n);
    if (dst) memcpy(dst, s, n);
    return true;
}

static bool literal(Parser *ps, const char *word, JsonType type) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        fail(ps, "unexpected character");
        return false;
    }
    ps->p += n;
    new_node(ps, type);
    return true;
}

/* Closes container v (NULL in the first pass) that started at node first. */
static void close_container(Parser *ps, JsonValue *v, size_t first, size_t count) {
    if (!v) return;
    v->n = (unsigned)count;
    v->aux = (uint32_t)(ps->n_nodes - first - 1);
}

static bool parse_array(Parser *ps, int depth) {
    size_t first = ps->n_nodes, count = 0;
    JsonValue *v = new_node(ps, JSON_ARRAY);
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            if (!parse_value(ps, depth + 1)) return false;
            count++;
            skip_ws(ps);
            if (ps->p >= ps->end) {
                fail(ps, "unterminated array");
                return false;
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
            return false;
        }
    }
    close_container(ps, v, first, count);
    return true;
}

static bool parse_object(Parser *ps, int depth) {
    size_t first = ps->n_nodes, count = 0;
    JsonValue *v = new_node(ps, JSON_OBJECT);
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, ps->p >= ps->end ? "unterminated object" : "expected a string key");
                return false;
            }
            if (!parse_string(ps)) return false;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, "expected ':'");
                return false;
            }
            ps->p++;
            if (!parse_value(ps, depth + 1)) return false;
            count++;
            skip_ws(ps);
            if (ps->p >= ps->end) {
                fail(ps, "unterminated object");
                return false;
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
            return false;
        }
    }
    close_container(ps, v, first, count);
    return true;
}

static bool parse_value(Parser *ps, int depth) {
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
    case '{': return parse_object(ps, depth);
    case '[': return parse_array(ps, depth);
    case '"': return parse_string(ps);
    case 't': return literal(ps, "true", JSON_TRUE);
    case 'f': return literal(ps, "false", JSON_FALSE);
    case 'n': return literal(ps, "null", JSON_NULL);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return parse_number(ps);
        fail(ps, "unexpected character");
        return false;
    }
}

static bool parse_all(Parser *ps) {
    if (parse_value(ps, 1)) {
        skip_ws(ps);
        if (ps->p != ps->end) fail(ps, "trailing characters after the JSON value");
    }
    return !ps->failed;
}

bool gpt2_json_parse(JsonDoc *doc, const char *text, size_t len, char *err, size_t errsz) {
    memset(doc, 0, sizeof *doc);
    if (len > JSON_MAX_TEXT) {
        snprintf(err, errsz, "the JSON text has %zu bytes, more than the limit of %u MiB", len, JSON_MAX_TEXT >> 20);
        return false;
    }
    Parser ps = {.p = (const unsigned char *)text,
                 .end = (const unsigned char *)text + len,
                 .start = (const unsigned char *)text,
                 .err = err,
                 .errsz = errsz};
    if (!parse_all(&ps)) return false;
    /* Every node takes at least one byte of input and every kept text at
     * most its own length plus one, so with len <= JSON_MAX_TEXT these
     * sizes and the offsets in the nodes fit. */
    size_t n_nodes = ps.n_nodes, n_text = ps.n_text;
    doc->block = malloc(n_nodes * sizeof(JsonValue) + n_text);
    if (!doc->block) {
        snprintf(err, errsz, "out of memory for a JSON text of %zu bytes", len);
        return false;
    }
    ps.p = ps.start;
    ps.nodes = doc->block;
    ps.text = (char *)doc->block + n_nodes * sizeof(JsonValue);
    ps.n_nodes = ps.n_text = 0;
    parse_all(&ps); /* cannot fail: the same text passed */
    doc->root = ps.nodes;
    doc->size = n_nodes * sizeof(JsonValue) + n_text;
    return true;
}

void gpt2_json_free(JsonDoc *doc) {
    free(doc->block);
    memset(doc, 0, sizeof *doc);
}

size_t gpt2_json_doc_bytes(const JsonDoc *doc) { return doc->size; }

/* ---- reading a document ------------------------------------------------------ */

const char *gpt2_json_string(const JsonValue *v, size_t *len) {
    if (!v || v->type != JSON_STRING) return NULL;
    if (len) *len = v->n;
    return text_of(v);
}

double gpt2_json_number(const JsonValue *v) {
    if (!v || v->type != JSON_NUMBER) return 0;
    if (v->small) return (double)(int32_t)v->aux;
    return strtod(text_of(v), NULL);
}

bool gpt2_json_number_text(const JsonValue *v, char *buf, size_t bufsz) {
    if (!v || v->type != JSON_NUMBER) return false;
    if (v->small) return snprintf(buf, bufsz, "%ld", (long)(int32_t)v->aux) < (int)bufsz;
    if (v->n >= bufsz) return false;
    memcpy(buf, text_of(v), v->n + 1);
    return true;
}

size_t gpt2_json_count(const JsonValue *v) { return v && v->type >= JSON_ARRAY ? v->n : 0; }

/* The node after v and everything inside it. */
static const JsonValue *skip(const JsonValue *v) { return v + 1 + (v->type >= JSON_ARRAY ? v->aux : 0); }

JsonIter gpt2_json_iter(const JsonValue *container) {
    JsonIter it = {0};
    if (container && container->type >= JSON_ARRAY) {
        it.at = container + 1;
        it.end = skip(container);
        it.object = container->type == JSON_OBJECT;
    }
    return it;
}

const JsonValue *gpt2_json_next(JsonIter *it, const JsonValue **key) {
    if (key) *key = NULL;
    if (it->at >= it->end) return NULL;
    if (it->object) {
        if (key) *key = it->at;
        it->at++;
    }
    const JsonValue *v = it->at;
    it->at = skip(v);
    return v;
}

const JsonValue *gpt2_json_at(const JsonValue *array, size_t i) {
    if (!array || array->type != JSON_ARRAY || i >= array->n) return NULL;
    JsonIter it = gpt2_json_iter(array);
    const JsonValue *v = gpt2_json_next(&it, NULL);
    while (i-- > 0) v = gpt2_json_next(&it, NULL);
    return v;
}

const JsonValue *gpt2_json_get(const JsonValue *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    const JsonValue *found = NULL, *k, *v;
    JsonIter it = gpt2_json_iter(obj);
    while ((v = gpt2_json_next(&it, &k)))
        if (k->n == n && memcmp(text_of(k), key, n) == 0) found = v;
    return found;
}

/* The number's text is valid JSON, so gpt2_parse_int refuses exactly what is
 * not an integer: a fraction or an exponent stops it before the end. */
bool gpt2_json_as_int(const JsonValue *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!v || v->type != JSON_NUMBER) return false;
    if (v->small) {
        int64_t x = (int32_t)v->aux;
        if (x < lo || x > hi) return false;
        *out = x;
        return true;
    }
    return gpt2_parse_int(text_of(v), lo, hi, out);
}

bool gpt2_json_as_u64(const JsonValue *v, uint64_t *out) {
    if (!v || v->type != JSON_NUMBER) return false;
    if (v->small) {
        if ((int32_t)v->aux < 0) return false;
        *out = (uint64_t)(int32_t)v->aux;
        return true;
    }
    return gpt2_parse_u64(text_of(v), out);
}

bool gpt2_json_string_is(const JsonValue *v, const char *lit) {
    return v && v->type == JSON_STRING && v->n == strlen(lit) && memcmp(text_of(v), lit, v->n) == 0;
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
