/* convert.c - see convert.h. */
#include "convert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "hf_vocab.h"
#include "json.h"
#include "model_writer.h"
#include "safetensors.h"

/* ---- config.json ------------------------------------------------------- */

/* Reads an integer key into *out; absent keys keep *out when optional. */
static bool config_int(const JsonValue *root, const char *key, bool optional, uint32_t *out, char *err, size_t errsz) {
    const JsonValue *v = json_get(root, key);
    int64_t x;
    if (!v) {
        if (optional) return true;
        snprintf(err, errsz, "config.json has no \"%s\"", key);
        return false;
    }
    if (!json_as_int(v, 1, UINT32_MAX, &x)) {
        snprintf(err, errsz, "config.json: \"%s\" is not a positive integer", key);
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

/* Refuses options that change the computation away from GPT-2's. */
static bool config_supported(const JsonValue *root, uint32_t n_embd, char *err, size_t errsz) {
    const JsonValue *act = json_get(root, "activation_function");
    if (act && (act->type != JSON_STRING || strcmp(act->u.string.bytes, "gelu_new") != 0)) {
        snprintf(err, errsz, "config.json: activation_function must be \"gelu_new\", the GELU GPT-2 uses");
        return false;
    }
    const JsonValue *type = json_get(root, "model_type");
    if (type && (type->type != JSON_STRING || strcmp(type->u.string.bytes, "gpt2") != 0)) {
        snprintf(err, errsz, "config.json: model_type is not \"gpt2\"");
        return false;
    }
    const JsonValue *inner = json_get(root, "n_inner");
    int64_t n_inner;
    if (inner && inner->type != JSON_NULL && !(json_as_int(inner, 0, INT64_MAX, &n_inner) && n_inner == 4 * (int64_t)n_embd)) {
        snprintf(err, errsz, "config.json: n_inner must be null or 4 * n_embd");
        return false;
    }
    static const struct { const char *key; JsonType wanted; } flags[] = {
        {"scale_attn_weights", JSON_TRUE},
        {"scale_attn_by_inverse_layer_idx", JSON_FALSE},
        {"add_cross_attention", JSON_FALSE},
    };
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        const JsonValue *v = json_get(root, flags[i].key);
        if (v && v->type != flags[i].wanted) {
            snprintf(err, errsz, "config.json: %s = %s is not supported", flags[i].key,
                     flags[i].wanted == JSON_TRUE ? "false" : "true");
            return false;
        }
    }
    return true;
}

bool hf_config_read(const char *path, ModelConfig *c, char *err, size_t errsz) {
    StrBuf text = {0};
    JsonDoc doc;
    char why[256];
    if (!read_whole_file(path, &text, err, errsz)) return false;
    if (!json_parse(&doc, text.data, text.len, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        strbuf_free(&text);
        return false;
    }
    strbuf_free(&text);
    const JsonValue *root = &doc.root;
    bool ok = root->type == JSON_OBJECT;
    if (!ok) snprintf(err, errsz, "%s: not a JSON object", path);
    c->n_ctx = 0;
    ok = ok && config_int(root, "vocab_size", false, &c->n_vocab, err, errsz) &&
         config_int(root, "n_ctx", true, &c->n_ctx, err, errsz) &&
         config_int(root, "n_positions", c->n_ctx != 0, &c->n_ctx, err, errsz) &&
         config_int(root, "n_embd", false, &c->n_embd, err, errsz) &&
         config_int(root, "n_layer", false, &c->n_layer, err, errsz) &&
         config_int(root, "n_head", false, &c->n_head, err, errsz) &&
         config_supported(root, c->n_embd, err, errsz);
    c->ln_eps = 1e-5f;
    const JsonValue *eps = json_get(root, "layer_norm_epsilon");
    if (ok && eps) {
        if (eps->type != JSON_NUMBER || !(eps->u.number.value > 0 && eps->u.number.value < 1)) {
            snprintf(err, errsz, "config.json: layer_norm_epsilon must be a number in (0, 1)");
            ok = false;
        }
        c->ln_eps = (float)eps->u.number.value;
    }
    json_free(&doc);
    return ok;
}

/* ---- tensors from a safetensors file ------------------------------------ */

typedef struct {
    SafeTensors st;
    const char *prefix; /* "" or "transformer." */
    FILE *progress;
    bool progress_tty;
    int last_percent;
} HfSource;

static bool is_ignored(const char *name) {
    size_t n = strlen(name);
    static const char *const suffixes[] = {".attn.bias", ".attn.masked_bias"};
    if (strcmp(name, "lm_head.weight") == 0) return true;
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t k = strlen(suffixes[i]);
        if (n >= k && strcmp(name + n - k, suffixes[i]) == 0) return true;
    }
    return false;
}

static void transpose(const float *in, size_t rows, size_t cols, float *out) { /* out[c][r] = in[r][c] */
    const size_t B = 32; /* blocks keep both sides in cache */
    for (size_t r0 = 0; r0 < rows; r0 += B)
        for (size_t c0 = 0; c0 < cols; c0 += B)
            for (size_t r = r0; r < r0 + B && r < rows; r++)
                for (size_t c = c0; c < c0 + B && c < cols; c++) out[c * rows + r] = in[r * cols + c];
}

static bool hf_tensor(void *ctx, const TensorSpec *s, float *out, char *err, size_t errsz) {
    HfSource *src = ctx;
    char name[96];
    snprintf(name, sizeof name, "%s%s", src->prefix, s->name);
    const StTensor *t = safetensors_find(&src->st, name);
    if (!t) {
        snprintf(err, errsz, "model.safetensors has no tensor \"%s\"", name);
        return false;
    }
    /* Expected shape as Hugging Face stores it. */
    uint64_t want[2] = {0, 0};
    int want_dims = s->is_matrix || s->kind == TK_WPE ? 2 : 1;
    if (want_dims == 1) want[0] = s->cols;
    else if (s->hf_transposed) want[0] = s->cols, want[1] = s->rows;
    else want[0] = s->rows, want[1] = s->cols;
    if (t->n_dims != want_dims || t->shape[0] != want[0] || (want_dims == 2 && t->shape[1] != want[1])) {
        char got[64] = "", expect[64];
        for (int i = 0; i < t->n_dims && strlen(got) < 40; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? "x" : "", (unsigned long long)t->shape[i]);
        if (want_dims == 1) snprintf(expect, sizeof expect, "%llu", (unsigned long long)want[0]);
        else snprintf(expect, sizeof expect, "%llux%llu", (unsigned long long)want[0], (unsigned long long)want[1]);
        snprintf(err, errsz, "tensor \"%s\" is [%s], config.json implies [%s]", name, got, expect);
        return false;
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16) {
        snprintf(err, errsz, "tensor \"%s\" has dtype %s; only F32, F16 and BF16 are supported", name, t->dtype_name);
        return false;
    }
    if (!s->hf_transposed) return safetensors_read_f32(t, out);
    float *tmp = malloc(t->n_elems * sizeof *tmp);
    if (!tmp) {
        snprintf(err, errsz, "out of memory for \"%s\"", name);
        return false;
    }
    safetensors_read_f32(t, tmp);
    transpose(tmp, s->cols, s->rows, out);
    free(tmp);
    return true;
}

static void report_progress(void *ctx, size_t done, size_t total, const TensorSpec *s) {
    HfSource *src = ctx;
    if (!src->progress) return;
    int percent = (int)(done * 100 / total);
    if (src->progress_tty) {
        fprintf(src->progress, "\r  %3d%%  %-40s", percent, s->name);
        if (done == total) fputc('\n', src->progress);
    } else if (percent / 25 != src->last_percent / 25 || done == total) {
        fprintf(src->progress, "  %3d%%  (%zu of %zu tensors)\n", percent, done, total);
    }
    src->last_percent = percent;
    fflush(src->progress);
}

/* Every tensor in the file must be used or deliberately ignored: a stray
 * h.N tensor means config.json has fewer layers than the weights. */
static bool check_leftovers(const HfSource *src, const ModelConfig *c, char *err, size_t errsz) {
    size_t count = model_tensor_count(c), plen = strlen(src->prefix);
    for (size_t i = 0; i < src->st.n_tensors; i++) {
        const char *name = src->st.tensors[i].name;
        const char *bare = strncmp(name, src->prefix, plen) == 0 ? name + plen : name;
        if (is_ignored(bare)) continue;
        bool known = false;
        for (size_t j = 0; j < count && !known; j++) {
            TensorSpec s;
            model_tensor_spec(c, j, &s);
            known = strcmp(bare, s.name) == 0;
        }
        if (!known) {
            snprintf(err, errsz, "model.safetensors has tensor \"%s\", which a %u-layer GPT-2 does not have", name,
                     c->n_layer);
            return false;
        }
    }
    return true;
}

static void join(char *out, size_t n, const char *dir, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

bool convert_hf(const ConvertOptions *o, char *err, size_t errsz) {
    char path[4096], vocab_path[4096], merges_path[4096];
    const char *tok_dir = o->tokenizer_dir ? o->tokenizer_dir : o->hf_dir;
    ModelConfig c = {.dtype = o->dtype};
    join(path, sizeof path, o->hf_dir, "config.json");
    if (!hf_config_read(path, &c, err, errsz)) return false;
    join(vocab_path, sizeof vocab_path, tok_dir, "vocab.json");
    join(merges_path, sizeof merges_path, tok_dir, "merges.txt");
    HfVocab vocab;
    if (!hf_vocab_load(&vocab, vocab_path, merges_path, err, errsz)) return false;
    c.eot_id = vocab.data.eot_id;
    bool ok = true;
    if (vocab.data.n_vocab != c.n_vocab) {
        snprintf(err, errsz, "vocab.json has %u tokens but config.json says vocab_size %u", vocab.data.n_vocab, c.n_vocab);
        ok = false;
    }
    HfSource src = {.prefix = "", .progress = o->progress, .progress_tty = o->progress && isatty(fileno(o->progress))};
    join(path, sizeof path, o->hf_dir, "model.safetensors");
    if (ok && !safetensors_open(&src.st, path, err, errsz)) ok = false;
    if (ok) {
        if (!safetensors_find(&src.st, "wte.weight") && safetensors_find(&src.st, "transformer.wte.weight"))
            src.prefix = "transformer.";
        ok = check_leftovers(&src, &c, err, errsz);
        if (ok && o->progress)
            fprintf(o->progress, "converting %u layers, n_embd %u, n_ctx %u to %s (%s)\n", c.n_layer, c.n_embd, c.n_ctx,
                    o->out_path, dtype_name(c.dtype));
        TensorSource ts = {hf_tensor, report_progress, &src};
        if (ok) ok = model_write(o->out_path, &c, &vocab.data, &ts, err, errsz);
        safetensors_close(&src.st);
    }
    hf_vocab_free(&vocab);
    return ok;
}

/* ---- random models ------------------------------------------------------ */

bool model_shape_from_name(const char *name, ModelConfig *c) {
    static const struct { const char *name; uint32_t layers, heads, embd; } known[] = {
        {"124M", 12, 12, 768}, {"355M", 24, 16, 1024}, {"774M", 36, 20, 1280}, {"1558M", 48, 25, 1600}, {"distil", 6, 12, 768},
    };
    c->n_vocab = 50257;
    c->n_ctx = 1024;
    c->ln_eps = 1e-5f;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        if (strcmp(name, known[i].name) == 0) {
            c->n_layer = known[i].layers, c->n_head = known[i].heads, c->n_embd = known[i].embd;
            return true;
        }
    }
    unsigned l, h, e, ctx;
    char tail;
    int n = sscanf(name, "%ux%ux%ux%u%c", &l, &h, &e, &ctx, &tail);
    if (n != 3 && n != 4) return false;
    c->n_layer = l, c->n_head = h, c->n_embd = e;
    if (n == 4) c->n_ctx = ctx;
    return true;
}

typedef struct {
    uint64_t state;
} Rng;

static float rng_uniform(Rng *r) { /* in [-1, 1) */
    r->state ^= r->state >> 12, r->state ^= r->state << 25, r->state ^= r->state >> 27;
    return (float)((r->state * 0x2545F4914F6CDD1Dull) >> 40) / (float)(1 << 23) - 1.0f;
}

typedef struct {
    Rng rng;
    FILE *progress;
} RandomSource;

/* GPT-2's initialisation, roughly: weights of std 0.02, LayerNorm gains
 * near 1, small biases.  Uniform draws scaled to that std keep it fast. */
static bool random_tensor(void *ctx, const TensorSpec *s, float *out, char *err, size_t errsz) {
    (void)err, (void)errsz;
    RandomSource *src = ctx;
    bool gain = s->kind == TK_LN1_W || s->kind == TK_LN2_W || s->kind == TK_LNF_W;
    float spread = s->is_matrix || s->kind == TK_WPE ? 0.02f * 1.7320508f : 0.01f;
    size_t n = (size_t)s->rows * s->cols;
    for (size_t i = 0; i < n; i++) out[i] = (gain ? 1.0f : 0.0f) + spread * rng_uniform(&src->rng);
    return true;
}

static void random_progress(void *ctx, size_t done, size_t total, const TensorSpec *s) {
    RandomSource *src = ctx;
    (void)s;
    if (src->progress && done == total) fprintf(src->progress, "wrote %zu tensors\n", total);
}

/* A stand-in vocabulary: the 256 bytes, then tokens of two bytes made by
 * merging byte pairs, then <|endoftext|>. */
typedef struct {
    uint32_t *offsets;
    uint8_t *bytes;
    uint32_t *merges;
    TokenizerData data;
} SyntheticVocab;

static bool synthetic_vocab(SyntheticVocab *v, uint32_t n_vocab) {
    static const char eot[] = "<|endoftext|>";
    uint32_t n_merges = n_vocab - 257;
    if (n_merges > 65536) return false;
    v->offsets = malloc((n_vocab + 1) * sizeof *v->offsets);
    v->bytes = malloc(256 + 2 * (size_t)n_merges + sizeof eot);
    v->merges = malloc(3 * (size_t)n_merges * sizeof *v->merges);
    if (!v->offsets || !v->bytes || !v->merges) return false;
    uint32_t at = 0;
    for (uint32_t i = 0; i < 256; i++) v->offsets[i] = at, v->bytes[at++] = (uint8_t)i;
    for (uint32_t k = 0; k < n_merges; k++) {
        uint32_t left = k % 256, right = k / 256;
        v->offsets[256 + k] = at;
        v->bytes[at++] = (uint8_t)left;
        v->bytes[at++] = (uint8_t)right;
        v->merges[3 * k] = left, v->merges[3 * k + 1] = right, v->merges[3 * k + 2] = 256 + k;
    }
    v->offsets[n_vocab - 1] = at;
    memcpy(v->bytes + at, eot, sizeof eot - 1);
    v->offsets[n_vocab] = at + (uint32_t)(sizeof eot - 1);
    v->data = (TokenizerData){n_vocab, v->offsets, v->bytes, n_merges, v->merges, n_vocab - 1};
    return true;
}

bool convert_random(const ModelConfig *c, uint64_t seed, const char *tokenizer_dir, const char *out_path, FILE *progress,
                    char *err, size_t errsz) {
    ModelConfig cfg = *c;
    HfVocab hf = {0};
    SyntheticVocab syn = {0};
    const TokenizerData *vocab;
    bool ok = true;
    if (tokenizer_dir) {
        char vocab_path[4096], merges_path[4096];
        join(vocab_path, sizeof vocab_path, tokenizer_dir, "vocab.json");
        join(merges_path, sizeof merges_path, tokenizer_dir, "merges.txt");
        if (!hf_vocab_load(&hf, vocab_path, merges_path, err, errsz)) return false;
        vocab = &hf.data;
        cfg.n_vocab = vocab->n_vocab;
    } else {
        ok = cfg.n_vocab >= 257 && synthetic_vocab(&syn, cfg.n_vocab);
        if (!ok) snprintf(err, errsz, "cannot make a synthetic vocabulary of %u tokens", cfg.n_vocab);
        vocab = &syn.data;
    }
    cfg.eot_id = vocab->eot_id;
    RandomSource src = {{seed * 0x9E3779B97F4A7C15ull + 1}, progress};
    TensorSource ts = {random_tensor, random_progress, &src};
    if (ok) ok = model_write(out_path, &cfg, vocab, &ts, err, errsz);
    if (tokenizer_dir) hf_vocab_free(&hf);
    free(syn.offsets);
    free(syn.bytes);
    free(syn.merges);
    return ok;
}
