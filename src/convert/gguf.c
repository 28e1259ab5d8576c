/* gguf.c - see gguf.h. */
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json.h"
#include "strbuf.h"
#include "utf8.h"

enum { GT_U8, GT_I8, GT_U16, GT_I16, GT_U32, GT_I32, GT_F32, GT_BOOL, GT_STRING, GT_ARRAY, GT_U64, GT_I64, GT_F64 };

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_NAME 256

/* ggml's tensor types, for naming the ones refused. */
static const char *const ggml_type_names[] = {
    "F32",     "F16",   "Q4_0",   "Q4_1",  "Q4_2",     "Q4_3",     "Q5_0",     "Q5_1",    "Q8_0",
    "Q8_1",    "Q2_K",  "Q3_K",   "Q4_K",  "Q5_K",     "Q6_K",     "Q8_K",     "IQ2_XXS", "IQ2_XS",
    "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S",    "IQ4_XS",   "I8",       "I16",     "I32",
    "I64",     "F64",   "IQ1_M",  "BF16",  "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",   "TQ2_0",
};
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_BF16 = 30 };

bool gpt2_gguf_is_gguf(const uint8_t *b, size_t n) { return n >= 4 && memcmp(b, "GGUF", 4) == 0; }

/* ---- reading the container --------------------------------------------------- */

typedef struct {
    const uint8_t *b;
    size_t n, pos;
    char *err;
    size_t errsz;
} Rd;

static bool cut(Rd *r, const char *what) {
    snprintf(r->err, r->errsz, "GGUF file cut short in %s (truncated file?)", what);
    return false;
}

static bool rd_bytes(Rd *r, uint64_t k, const uint8_t **p, const char *what) {
    if (k > r->n - r->pos) return cut(r, what);
    *p = r->b + r->pos;
    r->pos += (size_t)k;
    return true;
}

static uint64_t le(const uint8_t *p, size_t k) {
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static bool get_u32(Rd *r, uint32_t *v, const char *what) {
    const uint8_t *p;
    if (!rd_bytes(r, 4, &p, what)) return false;
    *v = (uint32_t)le(p, 4);
    return true;
}

static bool get_u64(Rd *r, uint64_t *v, const char *what) {
    const uint8_t *p;
    if (!rd_bytes(r, 8, &p, what)) return false;
    *v = le(p, 8);
    return true;
}

static bool rd_str(Rd *r, const uint8_t **s, uint64_t *len, const char *what) {
    return get_u64(r, len, what) && rd_bytes(r, *len, s, what);
}

static unsigned scalar_size(uint32_t type) {
    switch (type) {
    case GT_U8:
    case GT_I8:
    case GT_BOOL: return 1;
    case GT_U16:
    case GT_I16: return 2;
    case GT_U32:
    case GT_I32:
    case GT_F32: return 4;
    case GT_U64:
    case GT_I64:
    case GT_F64: return 8;
    default: return 0;
    }
}

/* Skips a value of the given type; arrays nest at most `depth` deep. */
static bool skip_value(Rd *r, uint32_t type, int depth) {
    const uint8_t *p;
    unsigned size = scalar_size(type);
    if (size) return rd_bytes(r, size, &p, "a metadata value");
    if (type == GT_STRING) {
        uint64_t len;
        return rd_str(r, &p, &len, "a metadata string");
    }
    if (type != GT_ARRAY || depth == 0) {
        snprintf(r->err, r->errsz, "damaged GGUF file: unknown metadata type %u", type);
        return false;
    }
    uint32_t elem;
    uint64_t count;
    if (!get_u32(r, &elem, "an array") || !get_u64(r, &count, "an array")) return false;
    size = scalar_size(elem);
    if (size) return count <= (r->n - r->pos) / size ? rd_bytes(r, count * size, &p, "an array") : cut(r, "an array");
    if (count > (r->n - r->pos) / 8) return cut(r, "an array"); /* every other element takes 8 bytes or more */
    for (uint64_t i = 0; i < count; i++)
        if (!skip_value(r, elem, depth - 1)) return false;
    return true;
}

/* What the converter needs from the metadata: where each value starts. */
typedef struct {
    const char *key;
    uint32_t type;
    size_t at; /* 0: absent */
} Wanted;

enum {
    K_ARCH,
    K_CTX,
    K_EMBD,
    K_FF,
    K_LAYERS,
    K_HEADS,
    K_EPS,
    K_ALIGN,
    K_TOK_MODEL,
    K_TOKENS,
    K_MERGES,
    K_TOK_TYPE,
    K_COUNT
};

static bool read_int(const uint8_t *b, const Wanted *w, uint64_t *out) {
    const uint8_t *p = b + w->at;
    switch (w->type) {
    case GT_U8: *out = p[0]; return true;
    case GT_U16: *out = le(p, 2); return true;
    case GT_U32: *out = le(p, 4); return true;
    case GT_U64: *out = le(p, 8); return true;
    case GT_I8: *out = p[0]; return p[0] < 0x80;
    case GT_I16: *out = le(p, 2); return *out < 0x8000;
    case GT_I32: *out = le(p, 4); return *out < 0x80000000u;
    case GT_I64: *out = le(p, 8); return *out < (1ull << 63);
    default: return false;
    }
}

static bool string_is(const uint8_t *b, const Wanted *w, const char *lit) {
    if (w->type != GT_STRING) return false;
    uint64_t len = le(b + w->at, 8);
    return len == strlen(lit) && memcmp(b + w->at + 8, lit, len) == 0;
}

/* ---- hyperparameters ------------------------------------------------------------ */

static bool config_from(const uint8_t *b, const Wanted *kv, ModelConfig *c, char *err, size_t errsz) {
    if (!kv[K_ARCH].at || !string_is(b, &kv[K_ARCH], "gpt2")) {
        snprintf(err, errsz, "the GGUF file's general.architecture is not \"gpt2\"");
        return false;
    }
    static const int keys[] = {K_CTX, K_EMBD, K_LAYERS, K_HEADS};
    uint32_t *fields[] = {&c->n_ctx, &c->n_embd, &c->n_layer, &c->n_head};
    for (size_t i = 0; i < 4; i++) {
        uint64_t v;
        if (!kv[keys[i]].at || !read_int(b, &kv[keys[i]], &v) || v == 0 || v > UINT32_MAX) {
            snprintf(err, errsz, "the GGUF file has no positive integer %s", kv[keys[i]].key);
            return false;
        }
        *fields[i] = (uint32_t)v;
    }
    uint64_t ff;
    if (kv[K_FF].at && (!read_int(b, &kv[K_FF], &ff) || ff != 4 * (uint64_t)c->n_embd)) {
        snprintf(err, errsz, "the GGUF file's gpt2.feed_forward_length is not 4 * n_embd");
        return false;
    }
    c->ln_eps = 1e-5f;
    if (kv[K_EPS].at) {
        float f = 0;
        uint32_t u = kv[K_EPS].type == GT_F32 ? (uint32_t)le(b + kv[K_EPS].at, 4) : 0;
        memcpy(&f, &u, sizeof f);
        if (!(f > 0 && f < 1)) {
            snprintf(err, errsz, "the GGUF file's layer_norm_epsilon is not a float32 in (0, 1)");
            return false;
        }
        c->ln_eps = f;
    }
    return true;
}

/* ---- the tokenizer ---------------------------------------------------------------- */

typedef struct {
    const char *s;
    size_t len;
} TokenText;

/* The strings of an array value (checked by skip_value): *count, first at *at. */
static bool string_array(const uint8_t *b, const Wanted *w, uint64_t *count, size_t *at) {
    if (w->type != GT_ARRAY || le(b + w->at, 4) != GT_STRING) return false;
    *count = le(b + w->at + 4, 8);
    *at = w->at + 12;
    return true;
}

/* llama.cpp's token types: its converter marks a fine-tune's added tokens
 * CONTROL (special) or USER_DEFINED, and the rows of a padded vocabulary
 * that no token names UNUSED ("[PAD50257]"); their strings are raw text,
 * not GPT-2's byte map. */
enum { TOKEN_CONTROL = 3, TOKEN_USER_DEFINED = 4, TOKEN_UNUSED = 5 };

/* Where the added tokens start: after the last token that is neither
 * CONTROL, USER_DEFINED nor UNUSED, or is "<|endoftext|>" (CONTROL, but
 * GPT-2's own).  n_tokens when the file lists no types. */
static uint64_t first_added(const uint8_t *b, const Wanted *types, const TokenText *tok, uint64_t n_tokens) {
    if (!types->at || types->type != GT_ARRAY) return n_tokens;
    uint32_t elem = (uint32_t)le(b + types->at, 4);
    if ((elem != GT_I32 && elem != GT_U32) || le(b + types->at + 4, 8) != n_tokens) return n_tokens;
    const uint8_t *type = b + types->at + 12;
    uint64_t first = n_tokens;
    while (first > 0) {
        uint32_t t = (uint32_t)le(type + 4 * (first - 1), 4);
        const TokenText *x = &tok[first - 1];
        bool eot = x->len == 13 && memcmp(x->s, "<|endoftext|>", 13) == 0;
        if (eot || (t != TOKEN_CONTROL && t != TOKEN_USER_DEFINED && t != TOKEN_UNUSED)) break;
        first--;
    }
    return first;
}

static bool tokenizer_from(const uint8_t *b, const Wanted *kv, HfVocab *vocab, char *err, size_t errsz) {
    uint64_t n_tokens, n_merges;
    size_t at_t, at_m;
    if (kv[K_TOK_MODEL].at && !string_is(b, &kv[K_TOK_MODEL], "gpt2")) {
        snprintf(err, errsz, "the GGUF file's tokenizer.ggml.model is not \"gpt2\" (byte-level BPE)");
        return false;
    }
    if (!kv[K_TOKENS].at || !kv[K_MERGES].at || !string_array(b, &kv[K_TOKENS], &n_tokens, &at_t) ||
        !string_array(b, &kv[K_MERGES], &n_merges, &at_m)) {
        snprintf(err, errsz, "the GGUF file has no tokenizer.ggml.tokens and tokenizer.ggml.merges string arrays");
        return false;
    }
    if (n_tokens == 0 || n_tokens > MAX_VOCAB) {
        snprintf(err, errsz, "the GGUF file has %llu tokens; expected 1 to %u", (unsigned long long)n_tokens,
                 MAX_VOCAB);
        return false;
    }
    /* skip_value saw every string inside the file. */
    TokenText *tok = malloc((size_t)n_tokens * sizeof *tok);
    HfAddedToken *added = malloc((size_t)n_tokens * sizeof *added);
    if (!tok || !added) {
        free(tok);
        free(added);
        snprintf(err, errsz, "out of memory");
        return false;
    }
    for (uint64_t i = 0; i < n_tokens; i++) {
        tok[i].len = (size_t)le(b + at_t, 8);
        tok[i].s = (const char *)b + at_t + 8;
        at_t += 8 + tok[i].len;
    }
    uint64_t n_base = first_added(b, &kv[K_TOK_TYPE], tok, n_tokens);
    /* The rest as vocab.json and merges.txt, for the strict readers of hf_vocab.c. */
    StrBuf json = {0}, merges = {0};
    bool ok = gpt2_strbuf_append(&json, "{", 1);
    for (uint64_t i = 0; ok && i < n_tokens; i++) {
        if (!gpt2_utf8_valid((const uint8_t *)tok[i].s, tok[i].len)) {
            snprintf(err, errsz, "the GGUF file's token %llu is not valid UTF-8", (unsigned long long)i);
            ok = false;
        } else if (i >= n_base) {
            added[i - n_base] = (HfAddedToken){tok[i].s, tok[i].len, i};
        } else {
            char num[32];
            int k = snprintf(num, sizeof num, ":%llu", (unsigned long long)i);
            ok = (i == 0 || gpt2_strbuf_append(&json, ",", 1)) &&
                 gpt2_json_append_string(&json, tok[i].s, tok[i].len) && gpt2_strbuf_append(&json, num, (size_t)k);
            if (!ok) snprintf(err, errsz, "out of memory");
        }
    }
    ok = ok && gpt2_strbuf_append(&json, "}", 1);
    for (uint64_t i = 0; ok && i < n_merges; i++) {
        uint64_t len = le(b + at_m, 8);
        const uint8_t *s = b + at_m + 8;
        at_m += 8 + (size_t)len;
        if (memchr(s, '\n', (size_t)len) || memchr(s, '\r', (size_t)len)) {
            snprintf(err, errsz, "the GGUF file's merge %llu holds a line break", (unsigned long long)i);
            ok = false;
        } else if (!gpt2_strbuf_append(&merges, s, (size_t)len) || !gpt2_strbuf_append(&merges, "\n", 1)) {
            snprintf(err, errsz, "out of memory");
            ok = false;
        }
    }
    if (ok && !merges.data && !gpt2_strbuf_append(&merges, "", 0)) {
        snprintf(err, errsz, "out of memory");
        ok = false;
    }
    ok = ok && gpt2_hf_vocab_parse(vocab, json.data, json.len, "tokenizer.ggml.tokens", merges.data, merges.len,
                                   "tokenizer.ggml.merges", err, errsz);
    if (ok && n_base < n_tokens) {
        ok = gpt2_hf_vocab_append_added(vocab, added, (size_t)(n_tokens - n_base), (uint32_t)n_tokens,
                                        "tokenizer.ggml.tokens (added tokens)", err, errsz);
        if (!ok) gpt2_hf_vocab_free(vocab);
    }
    gpt2_strbuf_free(&json);
    gpt2_strbuf_free(&merges);
    free(tok);
    free(added);
    return ok;
}

/* ---- tensors ------------------------------------------------------------------------ */

typedef struct {
    const char *gguf, *hf;
    bool conv1d; /* Hugging Face stores it [in][out] */
} NameMap;

static const NameMap global_names[] = {
    {"token_embd.weight", "wte.weight", false},
    {"position_embd.weight", "wpe.weight", false},
    {"output_norm.weight", "ln_f.weight", false},
    {"output_norm.bias", "ln_f.bias", false},
};
static const NameMap layer_names[] = {
    {"attn_norm.weight", "ln_1.weight", false},         {"attn_norm.bias", "ln_1.bias", false},
    {"attn_qkv.weight", "attn.c_attn.weight", true},    {"attn_qkv.bias", "attn.c_attn.bias", false},
    {"attn_output.weight", "attn.c_proj.weight", true}, {"attn_output.bias", "attn.c_proj.bias", false},
    {"ffn_norm.weight", "ln_2.weight", false},          {"ffn_norm.bias", "ln_2.bias", false},
    {"ffn_up.weight", "mlp.c_fc.weight", true},         {"ffn_up.bias", "mlp.c_fc.bias", false},
    {"ffn_down.weight", "mlp.c_proj.weight", true},     {"ffn_down.bias", "mlp.c_proj.bias", false},
};

/* The Hugging Face name of a GGUF tensor name, or the name itself when it
 * is not one of a GPT-2's (the converter then refuses it by name). */
static void hf_name(const char *name, char *out, size_t outsz, bool *conv1d) {
    *conv1d = false;
    for (size_t i = 0; i < sizeof global_names / sizeof *global_names; i++)
        if (strcmp(name, global_names[i].gguf) == 0) {
            snprintf(out, outsz, "%s", global_names[i].hf);
            return;
        }
    if (strncmp(name, "blk.", 4) == 0) {
        const char *p = name + 4;
        unsigned long layer = 0;
        int digits = 0;
        for (; *p >= '0' && *p <= '9' && digits < 8; p++, digits++) layer = layer * 10 + (unsigned long)(*p - '0');
        if (digits && *p == '.' && !(digits > 1 && name[4] == '0')) {
            for (size_t i = 0; i < sizeof layer_names / sizeof *layer_names; i++)
                if (strcmp(p + 1, layer_names[i].gguf) == 0) {
                    snprintf(out, outsz, "h.%lu.%s", layer, layer_names[i].hf);
                    *conv1d = layer_names[i].conv1d;
                    return;
                }
        }
    }
    snprintf(out, outsz, "%s", name);
}

typedef struct {
    char name[GGUF_MAX_NAME + 1];
    uint32_t n_dims, type;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t offset, bytes, n_elems;
} Info;

static bool read_info(Rd *r, Info *t) {
    const uint8_t *s;
    uint64_t len;
    if (!rd_str(r, &s, &len, "the tensor directory")) return false;
    if (len == 0 || len > GGUF_MAX_NAME || memchr(s, 0, (size_t)len) || !gpt2_utf8_valid(s, (size_t)len)) {
        snprintf(r->err, r->errsz, "damaged GGUF file: a tensor name is empty, too long or not text");
        return false;
    }
    memcpy(t->name, s, (size_t)len);
    t->name[len] = '\0';
    char shown[UTF8_SHOWN];
    gpt2_utf8_shown(t->name, (size_t)len, shown, sizeof shown);
    if (!get_u32(r, &t->n_dims, "the tensor directory")) return false;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
        snprintf(r->err, r->errsz, "damaged GGUF file: tensor \"%s\" has %u dimensions", shown, t->n_dims);
        return false;
    }
    t->n_elems = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (!get_u64(r, &t->ne[d], "the tensor directory")) return false;
        if (t->ne[d] == 0 || t->ne[d] > UINT64_MAX / t->n_elems) {
            snprintf(r->err, r->errsz, "damaged GGUF file: tensor \"%s\" has an empty or oversized shape", shown);
            return false;
        }
        t->n_elems *= t->ne[d];
    }
    if (!get_u32(r, &t->type, "the tensor directory") || !get_u64(r, &t->offset, "the tensor directory")) return false;
    switch (t->type) {
    case GGML_F32: t->bytes = t->n_elems <= UINT64_MAX / 4 ? t->n_elems * 4 : UINT64_MAX; break;
    case GGML_F16:
    case GGML_BF16: t->bytes = t->n_elems <= UINT64_MAX / 2 ? t->n_elems * 2 : UINT64_MAX; break;
    case GGML_Q8_0:
        if (t->ne[0] % 32) {
            snprintf(r->err, r->errsz,
                     "damaged GGUF file: Q8_0 tensor \"%s\" has rows of %llu values, not whole blocks", shown,
                     (unsigned long long)t->ne[0]);
            return false;
        }
        t->bytes = t->n_elems / 32 * 34;
        break;
    default:
        snprintf(r->err, r->errsz,
                 "tensor \"%s\" has GGUF type %s, which gpt2-convert does not read (F32, F16, BF16 "
                 "and Q8_0 only)",
                 shown,
                 t->type < sizeof ggml_type_names / sizeof *ggml_type_names ? ggml_type_names[t->type] : "unknown");
        return false;
    }
    return true;
}

static CkDType ck_type(uint32_t type, const char **name) {
    switch (type) {
    case GGML_F32: *name = "F32"; return CK_F32;
    case GGML_F16: *name = "F16"; return CK_F16;
    case GGML_BF16: *name = "BF16"; return CK_BF16;
    default: *name = "Q8_0"; return CK_Q8_0;
    }
}

static bool add_tensor(Checkpoint *ck, const Info *t, const uint8_t *data, char *err, size_t errsz) {
    char name[GGUF_MAX_NAME + 64];
    bool conv1d;
    hf_name(t->name, name, sizeof name, &conv1d);
    uint64_t shape[GGUF_MAX_DIMS], stride[GGUF_MAX_DIMS];
    int n = (int)t->n_dims;
    if (conv1d && n == 2) { /* [out][in] presented as [in][out] */
        shape[0] = t->ne[0], shape[1] = t->ne[1];
        stride[0] = 1, stride[1] = t->ne[0];
    } else {
        uint64_t s = 1;
        for (int d = 0; d < n; d++) {
            shape[n - 1 - d] = t->ne[d];
            stride[n - 1 - d] = s;
            s *= t->ne[d]; /* the product was checked */
        }
    }
    const char *type_name;
    CkDType type = ck_type(t->type, &type_name);
    return gpt2_checkpoint_add(ck, name, type, type_name, n, shape, stride, data + t->offset, t->bytes, err, errsz);
}

/* output.weight: llama.cpp's second copy of the tied head. */
static bool check_output(const Info *out, const Info *embd, const uint8_t *data, char *err, size_t errsz) {
    if (!embd) return true; /* the converter says token_embd is missing */
    bool same = out->type == embd->type && out->n_dims == embd->n_dims && out->bytes == embd->bytes &&
                memcmp(out->ne, embd->ne, sizeof out->ne) == 0 &&
                memcmp(data + out->offset, data + embd->offset, (size_t)out->bytes) == 0;
    if (!same)
        snprintf(err, errsz,
                 "the GGUF file's output.weight differs from token_embd.weight: this model does not tie its output "
                 "head to the token embeddings as GPT-2 does");
    return same;
}

bool gpt2_gguf_parse(Checkpoint *ck, ModelConfig *c, HfVocab *vocab, const uint8_t *b, size_t n, char *err,
                     size_t errsz) {
    Rd r = {b, n, 0, err, errsz};
    uint32_t version;
    uint64_t n_tensors, n_kv;
    if (!gpt2_gguf_is_gguf(b, n)) {
        snprintf(err, errsz, "not a GGUF file");
        return false;
    }
    r.pos = 4;
    if (!get_u32(&r, &version, "the header") || !get_u64(&r, &n_tensors, "the header") ||
        !get_u64(&r, &n_kv, "the header"))
        return false;
    if (version != 2 && version != 3) {
        snprintf(err, errsz, "GGUF version %u is not supported (2 and 3 are)", version);
        return false;
    }
    Wanted kv[K_COUNT] = {
        {"general.architecture", 0, 0},
        {"gpt2.context_length", 0, 0},
        {"gpt2.embedding_length", 0, 0},
        {"gpt2.feed_forward_length", 0, 0},
        {"gpt2.block_count", 0, 0},
        {"gpt2.attention.head_count", 0, 0},
        {"gpt2.attention.layer_norm_epsilon", 0, 0},
        {"general.alignment", 0, 0},
        {"tokenizer.ggml.model", 0, 0},
        {"tokenizer.ggml.tokens", 0, 0},
        {"tokenizer.ggml.merges", 0, 0},
        {"tokenizer.ggml.token_type", 0, 0},
    };
    if (n_kv > (n - r.pos) / 12) return cut(&r, "the metadata"); /* a key-value takes 12 bytes or more */
    for (uint64_t i = 0; i < n_kv; i++) {
        const uint8_t *key;
        uint64_t key_len;
        uint32_t type;
        if (!rd_str(&r, &key, &key_len, "the metadata") || !get_u32(&r, &type, "the metadata")) return false;
        for (size_t k = 0; k < K_COUNT; k++)
            if (key_len == strlen(kv[k].key) && memcmp(key, kv[k].key, key_len) == 0)
                kv[k].type = type, kv[k].at = r.pos;
        if (!skip_value(&r, type, 2)) return false;
    }
    uint64_t align = GGUF_DEFAULT_ALIGNMENT;
    if (kv[K_ALIGN].at &&
        (!read_int(b, &kv[K_ALIGN], &align) || align == 0 || align > (1u << 20) || (align & (align - 1)))) {
        snprintf(err, errsz, "damaged GGUF file: general.alignment is not a power of two");
        return false;
    }
    ModelConfig cfg = *c;
    if (!config_from(b, kv, &cfg, err, errsz)) return false;
    if (n_tensors > (n - r.pos) / 24) return cut(&r, "the tensor directory"); /* each entry takes 24 bytes or more */
    Info *infos = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *infos);
    if (!infos) {
        snprintf(err, errsz, "out of memory");
        return false;
    }
    bool ok = true;
    for (uint64_t i = 0; ok && i < n_tensors; i++) ok = read_info(&r, &infos[i]);
    uint64_t data_at = (r.pos + align - 1) / align * align;
    if (ok && data_at > n) ok = cut(&r, "the data");
    const Info *embd = NULL, *out = NULL;
    for (uint64_t i = 0; ok && i < n_tensors; i++) {
        if (infos[i].offset > n - data_at || infos[i].bytes > n - data_at - infos[i].offset) {
            char shown[UTF8_SHOWN];
            snprintf(err, errsz, "GGUF tensor \"%s\" lies beyond the end of the file (truncated file?)",
                     gpt2_utf8_shown(infos[i].name, strlen(infos[i].name), shown, sizeof shown));
            ok = false;
        }
        if (strcmp(infos[i].name, "token_embd.weight") == 0) embd = &infos[i];
        if (strcmp(infos[i].name, "output.weight") == 0) out = &infos[i];
    }
    if (ok && out) ok = check_output(out, embd, b + data_at, err, errsz);
    for (uint64_t i = 0; ok && i < n_tensors; i++)
        if (&infos[i] != out) ok = add_tensor(ck, &infos[i], b + data_at, err, errsz);
    free(infos);
    if (ok && vocab) ok = tokenizer_from(b, kv, vocab, err, errsz);
    if (ok) {
        c->n_ctx = cfg.n_ctx, c->n_embd = cfg.n_embd, c->n_layer = cfg.n_layer, c->n_head = cfg.n_head;
        c->ln_eps = cfg.ln_eps;
        if (vocab) c->n_vocab = vocab->data.n_vocab;
    }
    return ok;
}

bool gpt2_gguf_open(Checkpoint *ck, ModelConfig *c, HfVocab *vocab, const char *path, char *err, size_t errsz) {
    const void *p;
    size_t n;
    char why[400];
    if (!gpt2_checkpoint_map(ck, path, "a GGUF file", &p, &n, err, errsz)) return false;
    if (!gpt2_gguf_parse(ck, c, vocab, p, n, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        return false;
    }
    return true;
}
