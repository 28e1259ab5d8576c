/* hf_vocab.c - see hf_vocab.h.
 *
 * Spine: parse vocab.json into tokens laid out by id, index them by their
 * bytes, resolve each merges.txt line to (left, right, merged) ids, refuse
 * repeated pairs (with both line numbers), then let gpt2_tokenizer_build check
 * the rest.
 */
#include "hf_vocab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "hash.h"
#include "json.h"
#include "utf8.h"

#define NONE UINT32_MAX
#define EOT_TEXT "<|endoftext|>"
#define PAD_TOKEN "[PAD%u]" /* a row of the embeddings that no token names */

/* ---- GPT-2's byte-to-character map ---------------------------------------- */

/* The byte that character cp stands for, or -1 when it stands for none. */
static int char_to_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp < 0x100 || cp >= 0x100 + 68) return -1;
    uint32_t k = cp - 0x100;                      /* k-th of the bytes that do not stand for themselves */
    if (k < 33) return (int)k;                    /* 0x00-0x20 */
    if (k < 33 + 34) return (int)(0x7F + k - 33); /* 0x7F-0xA0 */
    return 0xAD;
}

/* Decodes the token string s[0..n) into out (room for n bytes); returns the
 * byte count, or sets *bad to the offending character and returns 0. */
static size_t decode_token(const char *s, size_t n, uint8_t *out, uint32_t *bad) {
    size_t i = 0, w = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = gpt2_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        int b = l ? char_to_byte(cp) : -1;
        if (b < 0) {
            *bad = l ? cp : 0xFFFD;
            return 0;
        }
        out[w++] = (uint8_t)b;
        i += l;
    }
    return w;
}

/* ---- the bytes -> id index ------------------------------------------------- */

typedef struct {
    uint32_t *slots; /* [mask + 1] token ids, NONE when empty */
    size_t mask;
    HashKey key; /* random: a vocab.json cannot be made to collide */
    const HfVocab *v;
} TokenIndex;

static bool same_token(const HfVocab *v, uint32_t id, const uint8_t *b, size_t n) {
    return v->offsets[id + 1] - v->offsets[id] == n && memcmp(v->bytes + v->offsets[id], b, n) == 0;
}

/* The slot of the token with bytes b[0..n), or the empty slot for it. */
static size_t index_slot(const TokenIndex *ix, const uint8_t *b, size_t n) {
    size_t i = (size_t)gpt2_hash_bytes(ix->key, b, n) & ix->mask;
    while (ix->slots[i] != NONE && !same_token(ix->v, ix->slots[i], b, n)) i = (i + 1) & ix->mask;
    return i;
}

static uint32_t index_find(const TokenIndex *ix, const uint8_t *b, size_t n) { return ix->slots[index_slot(ix, b, n)]; }

/* ---- vocab.json ------------------------------------------------------------- */

/* Lays the tokens of the object root out by id into v. */
static bool read_tokens(HfVocab *v, const JsonValue *root, const char *name, char *err, size_t errsz) {
    char tok[48];
    size_t n = gpt2_json_count(root);
    if (n == 0 || n > INT32_MAX) {
        snprintf(err, errsz, "%s: %zu tokens; expected 1 to %d", name, n, INT32_MAX);
        return false;
    }
    const JsonValue **key_of = calloc(n, sizeof *key_of); /* [n] by id: the key node */
    bool ok = key_of != NULL;
    if (!ok) snprintf(err, errsz, "%s: out of memory", name);
    size_t total = 0; /* bytes of the keys: at least those they stand for */
    JsonIter it = gpt2_json_iter(root);
    const JsonValue *key, *value;
    while (ok && (value = gpt2_json_next(&it, &key))) {
        size_t key_len;
        const char *key_bytes = gpt2_json_string(key, &key_len);
        int64_t id;
        if (key_len == 0) {
            snprintf(err, errsz, "%s: the empty string is not a token", name);
            ok = false;
        } else if (!gpt2_json_as_int(value, 0, INT64_MAX, &id)) {
            snprintf(err, errsz, "%s: token \"%s\": the id is not a non-negative integer", name,
                     gpt2_utf8_shown(key_bytes, key_len, tok, sizeof tok));
            ok = false;
        } else if ((uint64_t)id >= n) {
            snprintf(err, errsz, "%s: token \"%s\" has id %lld; with %zu tokens the ids must be 0..%zu", name,
                     gpt2_utf8_shown(key_bytes, key_len, tok, sizeof tok), (long long)id, n, n - 1);
            ok = false;
        } else if (key_of[id]) {
            char other[48];
            const JsonValue *o = key_of[id];
            snprintf(err, errsz, "%s: id %lld is given to both \"%s\" and \"%s\"", name, (long long)id,
                     gpt2_utf8_shown(gpt2_json_string(o, NULL), o->n, other, sizeof other),
                     gpt2_utf8_shown(key_bytes, key_len, tok, sizeof tok));
            ok = false;
        } else {
            key_of[id] = key;
            total += key_len;
        }
    }
    if (ok && total > UINT32_MAX) {
        snprintf(err, errsz, "%s: the tokens hold more than 4 GiB", name);
        ok = false;
    }
    if (ok) {
        v->offsets = malloc((n + 1) * sizeof *v->offsets);
        v->bytes = malloc(total ? total : 1);
        if (!v->offsets || !v->bytes) {
            snprintf(err, errsz, "%s: out of memory", name);
            ok = false;
        }
    }
    uint32_t at = 0;
    for (size_t id = 0; ok && id < n; id++) {
        size_t key_len;
        const char *key_bytes = gpt2_json_string(key_of[id], &key_len);
        uint32_t bad = 0;
        v->offsets[id] = at;
        size_t len = decode_token(key_bytes, key_len, v->bytes + at, &bad);
        if (len == 0) {
            snprintf(err, errsz, "%s: token \"%s\": character U+%04X is not in GPT-2's byte map", name,
                     gpt2_utf8_shown(key_bytes, key_len, tok, sizeof tok), (unsigned)bad);
            ok = false;
        }
        at += (uint32_t)len;
    }
    if (ok) {
        v->offsets[n] = at;
        v->data.n_vocab = (uint32_t)n;
    }
    free(key_of);
    return ok;
}

static bool read_vocab(HfVocab *v, TokenIndex *ix, const char *text, size_t len, const char *name, char *err,
                       size_t errsz) {
    JsonDoc doc;
    char jerr[256];
    if (!gpt2_json_parse(&doc, text, len, jerr, sizeof jerr)) {
        snprintf(err, errsz, "%s: %s", name, jerr);
        return false;
    }
    bool ok = doc.root->type == JSON_OBJECT;
    if (!ok) snprintf(err, errsz, "%s: expected a JSON object of token strings to ids", name);
    ok = ok && read_tokens(v, doc.root, name, err, errsz);
    gpt2_json_free(&doc);
    if (!ok) return false;

    size_t cap = 16;
    while (cap < (size_t)v->data.n_vocab * 2) cap *= 2;
    ix->slots = malloc(cap * sizeof *ix->slots);
    if (!ix->slots) {
        snprintf(err, errsz, "%s: out of memory", name);
        return false;
    }
    memset(ix->slots, 0xFF, cap * sizeof *ix->slots);
    ix->mask = cap - 1;
    ix->key = gpt2_hash_new_key();
    ix->v = v;
    for (uint32_t id = 0; id < v->data.n_vocab; id++) {
        const uint8_t *b = v->bytes + v->offsets[id];
        size_t n = v->offsets[id + 1] - v->offsets[id];
        size_t s = index_slot(ix, b, n);
        if (ix->slots[s] != NONE) {
            /* The byte map is one-to-one, so only a repeated key gets here. */
            snprintf(err, errsz, "%s: token with id %u appears again with id %u", name, (unsigned)ix->slots[s],
                     (unsigned)id);
            return false;
        }
        ix->slots[s] = id;
    }
    uint32_t eot = index_find(ix, (const uint8_t *)EOT_TEXT, strlen(EOT_TEXT));
    if (eot == NONE) {
        snprintf(err, errsz, "%s: no \"%s\" token", name, EOT_TEXT);
        return false;
    }
    v->data.eot_id = eot;
    return true;
}

/* ---- merges.txt ------------------------------------------------------------- */

typedef struct {
    uint32_t left, right;
    uint32_t line; /* 1-based line in merges.txt */
} MergeLine;

static int by_pair(const void *a, const void *b) {
    const MergeLine *x = a, *y = b;
    if (x->left != y->left) return x->left < y->left ? -1 : 1;
    if (x->right != y->right) return x->right < y->right ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* Resolves one rule "A B" (line[0..n)) to ids; buf has room for n bytes. */
static bool read_rule(const TokenIndex *ix, const char *line, size_t n, uint8_t *buf, uint32_t out[3], const char *name,
                      size_t lineno, char *err, size_t errsz) {
    char tok[48];
    char where[4096];
    snprintf(where, sizeof where, "%s:%zu", name, lineno); /* only for messages */
    const char *sp = memchr(line, ' ', n);
    if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', (size_t)(line + n - sp - 1))) {
        snprintf(err, errsz, "%s: expected two tokens separated by one space, got \"%s\"", where,
                 gpt2_utf8_shown(line, n, tok, sizeof tok));
        return false;
    }
    const char *part[2] = {line, sp + 1};
    size_t part_len[2] = {(size_t)(sp - line), (size_t)(line + n - sp - 1)};
    size_t at = 0;
    for (int k = 0; k < 2; k++) {
        uint32_t bad;
        size_t got = decode_token(part[k], part_len[k], buf + at, &bad);
        if (got == 0) {
            snprintf(err, errsz, "%s: token \"%s\": character U+%04X is not in GPT-2's byte map", where,
                     gpt2_utf8_shown(part[k], part_len[k], tok, sizeof tok), (unsigned)bad);
            return false;
        }
        out[k] = index_find(ix, buf + at, got);
        if (out[k] == NONE) {
            snprintf(err, errsz, "%s: token \"%s\" is not in the vocabulary", where,
                     gpt2_utf8_shown(part[k], part_len[k], tok, sizeof tok));
            return false;
        }
        at += got;
    }
    out[2] = index_find(ix, buf, at); /* the two parts lie side by side in buf */
    if (out[2] == NONE) {
        snprintf(err, errsz, "%s: the merged token of \"%s\" is not in the vocabulary", where,
                 gpt2_utf8_shown(line, n, tok, sizeof tok));
        return false;
    }
    return true;
}

/* Refuses a pair listed twice, naming both lines. */
static bool check_repeats(const HfVocab *v, const uint32_t *lines, const char *name, char *err, size_t errsz) {
    size_t n = v->data.n_merges;
    MergeLine *m = malloc((n ? n : 1) * sizeof *m);
    if (!m) {
        snprintf(err, errsz, "%s: out of memory", name);
        return false;
    }
    for (size_t r = 0; r < n; r++) m[r] = (MergeLine){v->merges[3 * r], v->merges[3 * r + 1], lines[r]};
    qsort(m, n, sizeof *m, by_pair);
    bool ok = true;
    for (size_t i = 1; i < n && ok; i++) {
        if (m[i].left == m[i - 1].left && m[i].right == m[i - 1].right) {
            snprintf(err, errsz, "%s:%u: the rule of line %u again", name, (unsigned)m[i].line,
                     (unsigned)m[i - 1].line);
            ok = false;
        }
    }
    free(m);
    return ok;
}

static bool read_merges(HfVocab *v, const TokenIndex *ix, const char *text, size_t len, const char *name, char *err,
                        size_t errsz) {
    size_t max_rules = 1;
    for (size_t i = 0; i < len; i++) max_rules += text[i] == '\n';
    if (max_rules > UINT32_MAX / 3) {
        snprintf(err, errsz, "%s: too many lines", name);
        return false;
    }
    v->merges = malloc(max_rules * 3 * sizeof *v->merges);
    uint32_t *lines = malloc(max_rules * sizeof *lines); /* [n_merges] line of each rule */
    uint8_t *buf = malloc(len + 1);
    bool ok = v->merges && lines && buf;
    if (!ok) snprintf(err, errsz, "%s: out of memory", name);
    size_t pos = 0, n_rules = 0;
    for (size_t line = 1; ok && pos < len; line++) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos = nl ? pos + n + 1 : len;
        if (n > 0 && s[n - 1] == '\r') n--;
        if (line == 1 && n >= 8 && memcmp(s, "#version", 8) == 0) continue;
        if (n == 0) {
            if (pos == len) break; /* one empty line may end the file */
            snprintf(err, errsz, "%s:%zu: empty line", name, line);
            ok = false;
            break;
        }
        if (line > UINT32_MAX) {
            snprintf(err, errsz, "%s: too many lines", name);
            ok = false;
            break;
        }
        ok = read_rule(ix, s, n, buf, v->merges + 3 * n_rules, name, line, err, errsz);
        lines[n_rules++] = (uint32_t)line;
    }
    if (ok) {
        v->data.n_merges = (uint32_t)n_rules;
        ok = check_repeats(v, lines, name, err, errsz);
    }
    free(lines);
    free(buf);
    return ok;
}

/* ---- the whole ------------------------------------------------------------- */

void gpt2_hf_vocab_free(HfVocab *v) {
    free(v->offsets);
    free(v->bytes);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

/* Lets gpt2_tokenizer_build check the tables; on failure its reason follows
 * `name` (and `also`, when not NULL) in err. */
static bool vocab_builds(const HfVocab *v, const char *name, const char *also, char *err, size_t errsz) {
    Tokenizer *t;
    char why[512];
    if (!gpt2_tokenizer_build(&t, &v->data, why, sizeof why)) {
        snprintf(err, errsz, "%s%s%s: %s", name, also ? ", " : "", also ? also : "", why);
        return false;
    }
    gpt2_tokenizer_free(t);
    return true;
}

bool gpt2_hf_vocab_parse(HfVocab *out, const char *vocab_json, size_t vocab_len, const char *vocab_name,
                         const char *merges_txt, size_t merges_len, const char *merges_name, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    TokenIndex ix = {0};
    bool ok = read_vocab(out, &ix, vocab_json, vocab_len, vocab_name, err, errsz) &&
              read_merges(out, &ix, merges_txt, merges_len, merges_name, err, errsz);
    free(ix.slots);
    if (ok) {
        out->data.offsets = out->offsets;
        out->data.bytes = out->bytes;
        out->data.merges = out->merges;
        ok = vocab_builds(out, vocab_name, merges_name, err, errsz);
    }
    if (!ok) gpt2_hf_vocab_free(out);
    return ok;
}

bool gpt2_hf_vocab_load(HfVocab *out, const char *vocab_json_path, const char *merges_path, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    StrBuf vocab = {0}, merges = {0};
    bool ok = gpt2_fileio_read_file_max(vocab_json_path, JSON_MAX_VOCAB, &vocab, err, errsz) &&
              gpt2_fileio_read_file_max(merges_path, JSON_MAX_VOCAB, &merges, err, errsz) &&
              gpt2_hf_vocab_parse(out, vocab.data, vocab.len, vocab_json_path, merges.data, merges.len, merges_path,
                                  err, errsz);
    gpt2_strbuf_free(&vocab);
    gpt2_strbuf_free(&merges);
    return ok;
}

/* ---- tokenizer.json ---------------------------------------------------------- */

/* model.vocab as the text of a vocab.json. */
static bool vocab_text(const JsonValue *vocab, StrBuf *out) {
    JsonIter it = gpt2_json_iter(vocab);
    const JsonValue *key, *value;
    bool ok = gpt2_strbuf_append(out, "{", 1), first = true;
    while (ok && (value = gpt2_json_next(&it, &key))) {
        size_t len;
        const char *k = gpt2_json_string(key, &len);
        char num[64];
        if (!gpt2_json_number_text(value, num, sizeof num)) snprintf(num, sizeof num, "null");
        ok = (first || gpt2_strbuf_append(out, ",", 1)) && gpt2_json_append_string(out, k, len) &&
             gpt2_strbuf_append(out, ":", 1) && gpt2_strbuf_append(out, num, strlen(num));
        first = false;
    }
    return ok && gpt2_strbuf_append(out, "}", 1);
}

/* A merge part: text without spaces or line breaks. */
static bool merge_part(const JsonValue *v, const char **s, size_t *len) {
    *s = gpt2_json_string(v, len);
    return *s && *len && !memchr(*s, ' ', *len) && !memchr(*s, '\n', *len) && !memchr(*s, '\r', *len);
}

/* model.merges, "a b" strings or ["a", "b"] pairs, as the text of a
 * merges.txt; *bad is the index of an entry of neither form. */
static bool merges_text(const JsonValue *merges, StrBuf *out, size_t *bad) {
    JsonIter it = gpt2_json_iter(merges);
    const JsonValue *m;
    size_t i = 0;
    *bad = SIZE_MAX;
    bool ok = gpt2_strbuf_reserve(out, 0);
    for (; ok && (m = gpt2_json_next(&it, NULL)); i++) {
        const char *a, *b;
        size_t alen, blen;
        if (m->type == JSON_STRING) {
            a = gpt2_json_string(m, &alen);
            if (memchr(a, '\n', alen) || memchr(a, '\r', alen)) return *bad = i, false;
            ok = gpt2_strbuf_append(out, a, alen) && gpt2_strbuf_append(out, "\n", 1);
        } else if (m->type == JSON_ARRAY && gpt2_json_count(m) == 2 && merge_part(gpt2_json_at(m, 0), &a, &alen) &&
                   merge_part(gpt2_json_at(m, 1), &b, &blen)) {
            ok = gpt2_strbuf_append(out, a, alen) && gpt2_strbuf_append(out, " ", 1) &&
                 gpt2_strbuf_append(out, b, blen) && gpt2_strbuf_append(out, "\n", 1);
        } else {
            *bad = i;
            return false;
        }
    }
    return ok;
}

bool gpt2_hf_vocab_parse_tokenizer_json(HfVocab *out, const char *text, size_t len, const char *name, char *err,
                                        size_t errsz) {
    memset(out, 0, sizeof *out);
    StrBuf vocab = {0}, merges = {0};
    JsonDoc doc;
    char why[256];
    bool ok = gpt2_json_parse(&doc, text, len, why, sizeof why);
    if (!ok) {
        snprintf(err, errsz, "%s: %s", name, why);
        return false;
    }
    const JsonValue *model = doc.root->type == JSON_OBJECT ? gpt2_json_get(doc.root, "model") : NULL;
    const JsonValue *type = model && model->type == JSON_OBJECT ? gpt2_json_get(model, "type") : NULL;
    const JsonValue *v = model && model->type == JSON_OBJECT ? gpt2_json_get(model, "vocab") : NULL;
    const JsonValue *m = model && model->type == JSON_OBJECT ? gpt2_json_get(model, "merges") : NULL;
    if (!v || v->type != JSON_OBJECT || !m || m->type != JSON_ARRAY || (type && !gpt2_json_string_is(type, "BPE"))) {
        snprintf(err, errsz, "%s: no BPE model with a \"vocab\" object and a \"merges\" list", name);
        ok = false;
    }
    size_t bad = SIZE_MAX;
    if (ok && (!vocab_text(v, &vocab) || !merges_text(m, &merges, &bad))) {
        if (bad != SIZE_MAX)
            snprintf(err, errsz, "%s: model.merges entry %zu is neither \"a b\" nor [\"a\", \"b\"]", name, bad);
        else snprintf(err, errsz, "out of memory");
        ok = false;
    }
    gpt2_json_free(&doc);
    if (ok) {
        char vname[4200], mname[4200];
        snprintf(vname, sizeof vname, "%s (model.vocab)", name);
        snprintf(mname, sizeof mname, "%s (model.merges)", name);
        ok = gpt2_hf_vocab_parse(out, vocab.data, vocab.len, vname, merges.data, merges.len, mname, err, errsz);
    }
    gpt2_strbuf_free(&vocab);
    gpt2_strbuf_free(&merges);
    return ok;
}

bool gpt2_hf_vocab_load_tokenizer_json(HfVocab *out, const char *path, char *err, size_t errsz) {
    memset(out, 0, sizeof *out);
    StrBuf text = {0};
    if (!gpt2_fileio_read_file_max(path, JSON_MAX_VOCAB, &text, err, errsz)) return false;
    bool ok = gpt2_hf_vocab_parse_tokenizer_json(out, text.data, text.len, path, err, errsz);
    gpt2_strbuf_free(&text);
    return ok;
}

/* ---- added tokens -------------------------------------------------------------- */

bool gpt2_hf_vocab_append_added(HfVocab *v, const HfAddedToken *list, size_t n, uint32_t n_vocab, const char *name,
                                char *err, size_t errsz) {
    const uint32_t base = v->data.n_vocab;
    char shown[48], other[48];
    if (n_vocab <= base) return true;
    const HfAddedToken **by_id = calloc(n_vocab - base, sizeof *by_id); /* [n_vocab - base] */
    if (!by_id) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    bool ok = true;
    size_t total = 0;
    for (size_t i = 0; ok && i < n; i++) {
        const HfAddedToken *a = &list[i];
        const char *text = gpt2_utf8_shown(a->text, a->len, shown, sizeof shown);
        if (a->id < base) {
            size_t len = v->offsets[a->id + 1] - v->offsets[a->id];
            if (len != a->len || memcmp(v->bytes + v->offsets[a->id], a->text, len) != 0) {
                snprintf(err, errsz, "%s: added token \"%s\" has id %llu, which the vocabulary gives to \"%s\"", name,
                         text, (unsigned long long)a->id,
                         gpt2_utf8_shown((const char *)v->bytes + v->offsets[a->id], len, other, sizeof other));
                ok = false;
            }
        } else if (a->id >= n_vocab) {
            snprintf(err, errsz, "%s: added token \"%s\" has id %llu, but the model has %u token embeddings", name,
                     text, (unsigned long long)a->id, n_vocab);
            ok = false;
        } else if (by_id[a->id - base]) {
            snprintf(err, errsz, "%s: id %llu is given to two added tokens", name, (unsigned long long)a->id);
            ok = false;
        } else if (a->len == 0 || a->len > TOKENIZER_MAX_ADDED_BYTES) {
            snprintf(err, errsz, "%s: added token %llu is empty or longer than %u bytes", name,
                     (unsigned long long)a->id, TOKENIZER_MAX_ADDED_BYTES);
            ok = false;
        } else {
            by_id[a->id - base] = a;
            total += a->len;
        }
    }
    /* Rows no list names (a vocabulary padded to a multiple of 64, say)
     * get placeholders named as llama.cpp names them. */
    char pad[24];
    for (uint32_t id = base; ok && id < n_vocab; id++)
        if (!by_id[id - base]) total += (size_t)snprintf(pad, sizeof pad, PAD_TOKEN, (unsigned)id);
    if (ok && total > UINT32_MAX - v->offsets[base]) {
        snprintf(err, errsz, "%s: the added tokens hold more than 4 GiB", name);
        ok = false;
    }
    if (ok) {
        uint32_t *offsets = realloc(v->offsets, ((size_t)n_vocab + 1) * sizeof *offsets);
        if (offsets) v->offsets = offsets, v->data.offsets = offsets;
        uint8_t *bytes = offsets ? realloc(v->bytes, v->offsets[base] + total) : NULL;
        if (bytes) v->bytes = bytes, v->data.bytes = bytes;
        if (!bytes) {
            snprintf(err, errsz, "out of memory");
            ok = false;
        }
    }
    for (uint32_t id = base; ok && id < n_vocab; id++) {
        const HfAddedToken *a = by_id[id - base];
        size_t len = a ? a->len : (size_t)snprintf(pad, sizeof pad, PAD_TOKEN, (unsigned)id);
        memcpy(v->bytes + v->offsets[id], a ? a->text : pad, len);
        v->offsets[id + 1] = v->offsets[id] + (uint32_t)len;
    }
    free(by_id);
    if (!ok) return false;
    v->data.n_vocab = n_vocab;
    v->data.n_added = n_vocab - base;
    v->data.offsets = v->offsets;
    v->data.bytes = v->bytes;
    return vocab_builds(v, name, NULL, err, errsz);
}

/* The entries of added_tokens.json ({"<|pad|>": 50257, ...}) or of a
 * tokenizer.json's "added_tokens" ([{"id": 50257, "content": "<|pad|>", ...}]). */
static bool added_entries(const JsonValue *root, bool tokenizer_json, HfAddedToken *list, size_t *n, const char *name,
                          char *err, size_t errsz) {
    JsonIter it = gpt2_json_iter(root);
    const JsonValue *key, *value;
    size_t i = 0;
    int64_t id;
    while ((value = gpt2_json_next(&it, &key))) {
        HfAddedToken *a = &list[i];
        if (tokenizer_json) {
            const JsonValue *content = value->type == JSON_OBJECT ? gpt2_json_get(value, "content") : NULL;
            const JsonValue *idv = value->type == JSON_OBJECT ? gpt2_json_get(value, "id") : NULL;
            a->text = content && content->type == JSON_STRING ? gpt2_json_string(content, &a->len) : NULL;
            if (!a->text || !idv || !gpt2_json_as_int(idv, 0, INT64_MAX, &id)) {
                snprintf(err, errsz, "%s: added_tokens entry %zu has no \"content\" string and \"id\" number", name, i);
                return false;
            }
        } else {
            a->text = gpt2_json_string(key, &a->len);
            if (!gpt2_json_as_int(value, 0, INT64_MAX, &id)) {
                char shown[48];
                snprintf(err, errsz, "%s: added token \"%s\": the id is not a non-negative integer", name,
                         gpt2_utf8_shown(a->text, a->len, shown, sizeof shown));
                return false;
            }
        }
        a->id = (uint64_t)id;
        i++;
    }
    *n = i;
    return true;
}

bool gpt2_hf_vocab_load_added(HfVocab *v, const char *path, bool tokenizer_json, uint32_t n_vocab, char *err,
                              size_t errsz) {
    StrBuf text = {0};
    JsonDoc doc;
    char why[256];
    if (!gpt2_fileio_read_file_max(path, JSON_MAX_VOCAB, &text, err, errsz)) return false;
    bool ok = gpt2_json_parse(&doc, text.data, text.len, why, sizeof why);
    gpt2_strbuf_free(&text);
    if (!ok) {
        snprintf(err, errsz, "%s: %s", path, why);
        return false;
    }
    const JsonValue *root = doc.root;
    if (tokenizer_json) root = root->type == JSON_OBJECT ? gpt2_json_get(root, "added_tokens") : NULL;
    if (!root || root->type != (tokenizer_json ? JSON_ARRAY : JSON_OBJECT)) {
        snprintf(err, errsz,
                 tokenizer_json ? "%s: no \"added_tokens\" list" : "%s: expected a JSON object of added tokens to ids",
                 path);
        gpt2_json_free(&doc);
        return false;
    }
    size_t n = gpt2_json_count(root);
    HfAddedToken *list = malloc((n ? n : 1) * sizeof *list);
    ok = list != NULL;
    if (!ok) snprintf(err, errsz, "out of memory");
    ok = ok && added_entries(root, tokenizer_json, list, &n, path, err, errsz) &&
         gpt2_hf_vocab_append_added(v, list, n, n_vocab, path, err, errsz);
    free(list);
    gpt2_json_free(&doc);
    return ok;
}
