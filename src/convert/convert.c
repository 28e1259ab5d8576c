/* convert.c - see convert.h. */
#include "convert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "fileio.h"
#include "gguf.h"
#include "hf_vocab.h"
#include "json.h"
#include "model_writer.h"
#include "safetensors.h"
#include "shards.h"
#include "torch_checkpoint.h"
#include "utf8.h"

/* ---- config.json ------------------------------------------------------- */

/* GPT2Config's defaults, used as transformers uses them when a key is absent
 * (the wpe shape check catches a wrong guess of n_positions). */
#define HF_DEFAULT_N_POSITIONS 1024
#define HF_DEFAULT_LN_EPS 1e-5

/* Reads an integer key into *out; an absent key keeps *out when optional. */
static bool config_int(const JsonValue *root, const char *path, const char *key, bool optional, uint32_t *out,
                       char *err, size_t errsz) {
    const JsonValue *v = gpt2_json_get(root, key);
    int64_t x;
    if (!v) {
        if (optional) return true;
        snprintf(err, errsz, "%s has no \"%s\"", path, key);
        return false;
    }
    if (!gpt2_json_as_int(v, 1, UINT32_MAX, &x)) {
        snprintf(err, errsz, "%s: \"%s\" is not a positive integer", path, key);
        return false;
    }
    *out = (uint32_t)x;
    return true;
}

/* Refuses options that change the computation away from GPT-2's. */
static bool config_supported(const JsonValue *root, const char *path, uint32_t n_embd, char *err, size_t errsz) {
    const JsonValue *act = gpt2_json_get(root, "activation_function");
    if (act && !gpt2_json_string_is(act, "gelu_new")) {
        char shown[UTF8_SHOWN];
        snprintf(err, errsz, "%s: activation_function \"%s\" is not supported; GPT-2 uses \"gelu_new\"", path,
                 act->type == JSON_STRING ? gpt2_utf8_shown(gpt2_json_string(act, NULL), act->n, shown, sizeof shown)
                                          : "(not a string)");
        return false;
    }
    const JsonValue *type = gpt2_json_get(root, "model_type");
    if (type && !gpt2_json_string_is(type, "gpt2")) {
        snprintf(err, errsz, "%s: model_type is not \"gpt2\"", path);
        return false;
    }
    const JsonValue *inner = gpt2_json_get(root, "n_inner");
    int64_t n_inner;
    if (inner && inner->type != JSON_NULL &&
        !(gpt2_json_as_int(inner, 0, INT64_MAX, &n_inner) && n_inner == 4 * (int64_t)n_embd)) {
        snprintf(err, errsz, "%s: n_inner must be null or 4 * n_embd", path);
        return false;
    }
    /* Each flag, when present, must have GPT-2's value.  An untied output
     * head would make ignoring lm_head.weight wrong. */
    static const struct {
        const char *key;
        JsonType wanted;
    } flags[] = {
        {"scale_attn_weights", JSON_TRUE},
        {"scale_attn_by_inverse_layer_idx", JSON_FALSE},
        {"add_cross_attention", JSON_FALSE},
        {"tie_word_embeddings", JSON_TRUE},
    };
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        const JsonValue *v = gpt2_json_get(root, flags[i].key);
        if (v && v->type != flags[i].wanted) {
            snprintf(err, errsz, "%s: %s must be %s", path, flags[i].key,
                     flags[i].wanted == JSON_TRUE ? "true" : "false");
            return false;
        }
    }
    return true;
}

static bool config_eps(const JsonValue *root, const char *path, float *out, char *err, size_t errsz) {
    const JsonValue *eps = gpt2_json_get(root, "layer_norm_epsilon");
    *out = (float)HF_DEFAULT_LN_EPS;
    if (!eps) return true;
    /* Checked after narrowing: 1e-60 is positive as a double, 0 as a float. */
    float f = eps->type == JSON_NUMBER ? (float)gpt2_json_number(eps) : 0.0f;
    if (!(f > 0 && f < 1)) {
        snprintf(err, errsz, "%s: layer_norm_epsilon must be a number in (0, 1)", path);
        return false;
    }
    *out = f;
    return true;
}

static bool config_from_json(const JsonValue *root, const char *path, ModelConfig *c, char *err, size_t errsz) {
    if (root->type != JSON_OBJECT) {
        snprintf(err, errsz, "%s: not a JSON object", path);
        return false;
    }
    /* n_positions is the length of wpe; n_ctx is its older alias. */
    c->n_ctx = HF_DEFAULT_N_POSITIONS;
    if (!config_int(root, path, "vocab_size", false, &c->n_vocab, err, errsz) ||
        !config_int(root, path, "n_ctx", true, &c->n_ctx, err, errsz) ||
        !config_int(root, path, "n_positions", true, &c->n_ctx, err, errsz) ||
        !config_int(root, path, "n_embd", false, &c->n_embd, err, errsz) ||
        !config_int(root, path, "n_layer", false, &c->n_layer, err, errsz) ||
        !config_int(root, path, "n_head", false, &c->n_head, err, errsz) ||
        !config_supported(root, path, c->n_embd, err, errsz) || !config_eps(root, path, &c->ln_eps, err, errsz))
        return false;
    /* The bounds and n_embd % n_head now, in config.json's terms, rather
     * than after the weights are read.  eot_id is not known yet. */
    ModelConfig probe = *c;
    probe.eot_id = 0;
    probe.dtype = DTYPE_F32;
    char why[200];
    if (!gpt2_model_config_check(&probe, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        return false;
    }
    return true;
}

bool gpt2_hf_config_parse(const char *text, size_t len, const char *name, ModelConfig *c, char *err, size_t errsz) {
    JsonDoc doc;
    char why[256];
    if (!gpt2_json_parse(&doc, text, len, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", name, why);
        return false;
    }
    ModelConfig parsed = *c;
    bool ok = config_from_json(doc.root, name, &parsed, err, errsz);
    gpt2_json_free(&doc);
    if (ok) *c = parsed;
    return ok;
}

bool gpt2_hf_config_read(const char *path, ModelConfig *c, char *err, size_t errsz) {
    StrBuf text = {0};
    if (!gpt2_fileio_read_file_max(path, JSON_MAX_CONFIG, &text, err, errsz)) return false;
    bool ok = gpt2_hf_config_parse(text.data, text.len, path, c, err, errsz);
    gpt2_strbuf_free(&text);
    return ok;
}

/* ---- progress ------------------------------------------------------------ */

/* On a terminal one line, rewritten after every tensor; in a log a line at
 * every tenth of the work.  The work is counted in values, not tensors,
 * since wte alone is a third of GPT-2 small. */
typedef struct {
    FILE *f; /* NULL: quiet */
    bool tty;
    uint64_t values_total, values_done;
    int last_step;
} Progress;

static Progress progress_start(FILE *f, const ModelConfig *c) {
    Progress p = {.f = f, .tty = f && isatty(fileno(f))};
    char why[200];
    if (!gpt2_model_config_check(c, why, sizeof why)) return p; /* gpt2_model_write refuses it; no need to count */
    for (size_t i = 0; i < gpt2_model_tensor_count(c); i++) {
        TensorSpec s;
        gpt2_model_tensor_spec(c, i, &s);
        p.values_total += (uint64_t)s.rows * s.cols;
    }
    return p;
}

static void progress_step(Progress *p, size_t done, size_t total, const TensorSpec *s) {
    if (!p->f) return;
    p->values_done += (uint64_t)s->rows * s->cols;
    int percent = (int)(p->values_done * 100 / (p->values_total ? p->values_total : 1));
    if (p->tty) {
        fprintf(p->f, "\r  %3d%%  tensor %zu of %zu  %-32.32s", percent, done, total, s->name);
        if (done == total) fputc('\n', p->f);
    } else if (percent / 10 != p->last_step || done == total) {
        fprintf(p->f, "  %3d%%  tensor %zu of %zu  %s\n", percent, done, total, s->name);
        p->last_step = percent / 10;
    }
    fflush(p->f);
}

/* After a failure: the caller's message must not land on the end of a
 * progress line. */
static void progress_abandon(const Progress *p) {
    if (p->f && p->tty && p->values_done > 0 && p->values_done < p->values_total) fputc('\n', p->f);
}

/* ---- tensors from a checkpoint ------------------------------------------ */

typedef struct {
    Checkpoint ck;
    const char *prefix; /* "" or "transformer." */
    Progress progress;
} HfSource;

static void shape_text(char *out, size_t n, const uint64_t *dims, int n_dims) {
    size_t at = 0;
    out[0] = '\0';
    for (int i = 0; i < n_dims && at < n; i++) {
        int k = snprintf(out + at, n - at, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
        if (k < 0) break;
        at += (size_t)k;
    }
}

/* Finds the tensor for spec s and checks that it has the shape config.json
 * implies, as Hugging Face stores it (Conv1D weights [in, out]), and a
 * float dtype. */
static bool find_tensor(const HfSource *src, const TensorSpec *s, const CkTensor **out, char *err, size_t errsz) {
    char name[128];
    snprintf(name, sizeof name, "%s%s", src->prefix, s->name);
    const CkTensor *t = gpt2_checkpoint_find(&src->ck, name);
    if (!t) {
        snprintf(err, errsz, "%s has no tensor \"%s\"", src->ck.label, name);
        return false;
    }
    uint64_t want[2] = {s->cols, 0};
    int want_dims = s->is_matrix || s->kind == TK_WPE ? 2 : 1;
    if (want_dims == 2 && s->hf_transposed) want[0] = s->cols, want[1] = s->rows;
    else if (want_dims == 2) want[0] = s->rows, want[1] = s->cols;
    if (t->n_dims != want_dims || t->shape[0] != want[0] || (want_dims == 2 && t->shape[1] != want[1])) {
        char got[96], expect[64];
        shape_text(got, sizeof got, t->shape, t->n_dims);
        shape_text(expect, sizeof expect, want, want_dims);
        snprintf(err, errsz, "tensor \"%s\" has shape [%s], but config.json implies [%s]", name, got, expect);
        return false;
    }
    if (t->dtype != CK_F32 && t->dtype != CK_F16 && t->dtype != CK_BF16 && t->dtype != CK_Q8_0) {
        snprintf(err, errsz, "tensor \"%s\" has dtype %s; only F32, F16, BF16 and Q8_0 are supported", name,
                 t->dtype_name);
        return false;
    }
    *out = t;
    return true;
}

static bool hf_tensor(void *ctx, const TensorSpec *s, float *out, char *err, size_t errsz) {
    HfSource *src = ctx;
    const CkTensor *t;
    if (!find_tensor(src, s, &t, err, errsz)) return false;
    gpt2_checkpoint_read(t, s->hf_transposed, s->rows, s->cols, out);
    return true;
}

/* A Q8_0 matrix stored row by row in the file's orientation is carried
 * over block for block. */
static bool hf_q8_0(void *ctx, const TensorSpec *s, int8_t *quants, uint16_t *scales, bool *given, char *err,
                    size_t errsz) {
    HfSource *src = ctx;
    const CkTensor *t;
    if (!find_tensor(src, s, &t, err, errsz)) return false;
    if (t->dtype != CK_Q8_0 || t->n_dims != 2) return true;
    uint64_t s0 = t->stride[s->hf_transposed ? 1 : 0], s1 = t->stride[s->hf_transposed ? 0 : 1];
    if (s1 != 1 || s0 != s->cols || s->cols % Q8_BLOCK) return true;
    size_t blocks = s->cols / Q8_BLOCK;
    for (size_t r = 0; r < s->rows; r++) {
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = t->data + (r * blocks + b) * CK_Q8_0_BLOCK_BYTES;
            scales[r * blocks + b] = (uint16_t)(block[0] | block[1] << 8);
            memcpy(quants + r * s->cols + b * Q8_BLOCK, block + 2, Q8_BLOCK);
        }
    }
    *given = true;
    return true;
}

static void hf_progress(void *ctx, size_t done, size_t total, const TensorSpec *s) {
    progress_step(&((HfSource *)ctx)->progress, done, total, s);
}

/* The layer number at the start of "h.N.rest", with *rest set after its
 * dot, or -1 when name is not of that form. */
static long layer_of(const char *name, const char **rest) {
    if (strncmp(name, "h.", 2) != 0) return -1;
    const char *p = name + 2;
    long layer = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 8; p++, digits++) layer = layer * 10 + (*p - '0');
    if (digits == 0 || *p != '.' || (digits > 1 && name[2] == '0')) return -1;
    *rest = p + 1;
    return layer;
}

/* Whether bare (the name without prefix) is one of the weights of c, or a
 * causal-mask buffer of one of its layers.  Sets *stray_layer when it
 * names a layer beyond c->n_layer. */
static bool is_expected(const ModelConfig *c, const char *bare, bool *stray_layer) {
    *stray_layer = false;
    for (size_t i = 0; i < TENSORS_GLOBAL; i++) {
        TensorSpec s;
        gpt2_model_tensor_spec(c, i, &s);
        if (strcmp(bare, s.name) == 0) return true;
    }
    const char *rest;
    long layer = layer_of(bare, &rest);
    if (layer < 0) return false;
    bool known = strcmp(rest, "attn.bias") == 0 || strcmp(rest, "attn.masked_bias") == 0;
    for (size_t j = 0; j < TENSORS_PER_LAYER && !known; j++) {
        TensorSpec s;
        gpt2_model_tensor_spec(c, TENSORS_GLOBAL + j, &s); /* layer 0: "h.0." + the part we want */
        known = strcmp(rest, s.name + 4) == 0;
    }
    if (known && (uint64_t)layer >= c->n_layer) *stray_layer = true;
    return known && !*stray_layer;
}

/* Every tensor in the file must be a weight or deliberately ignored: a
 * stray h.N tensor means config.json has fewer layers than the weights. */
static bool check_leftovers(const HfSource *src, const ModelConfig *c, char *err, size_t errsz) {
    size_t plen = strlen(src->prefix);
    for (size_t i = 0; i < src->ck.n; i++) {
        const char *name = src->ck.tensors[i].name;
        if (strcmp(name, "lm_head.weight") == 0) continue; /* checked by check_tied_head */
        bool stray_layer = false;
        if (strncmp(name, src->prefix, plen) == 0 && is_expected(c, name + plen, &stray_layer)) continue;
        char shown[UTF8_SHOWN];
        gpt2_utf8_shown(name, strlen(name), shown, sizeof shown);
        if (stray_layer)
            snprintf(err, errsz, "%s has tensor \"%s\", but config.json says n_layer %u", src->ck.label, shown,
                     c->n_layer);
        else snprintf(err, errsz, "%s has tensor \"%s\", which a GPT-2 does not have", src->ck.label, shown);
        return false;
    }
    return true;
}

/* GPT-2 ties its output head to wte, so a stored lm_head.weight is ignored;
 * but only when it really is the same matrix.  Anything else is a model
 * this engine would run wrongly. */
static bool check_tied_head(const HfSource *src, const ModelConfig *c, char *err, size_t errsz) {
    const CkTensor *head = gpt2_checkpoint_find(&src->ck, "lm_head.weight");
    if (!head) return true;
    TensorSpec spec;
    gpt2_model_tensor_spec(c, TK_WTE, &spec);
    const CkTensor *wte;
    if (!find_tensor(src, &spec, &wte, err, errsz)) return false;
    if (head->n_dims != 2 || head->shape[0] != wte->shape[0] || head->shape[1] != wte->shape[1] ||
        (head->dtype != CK_F32 && head->dtype != CK_F16 && head->dtype != CK_BF16 && head->dtype != CK_Q8_0)) {
        snprintf(err, errsz, "lm_head.weight is not a float matrix of wte.weight's shape; GPT-2 ties the two");
        return false;
    }
    /* Compared as the values they stand for, bit for bit. */
    bool same = true;
    uint64_t r = 0;
    for (; r < c->n_vocab && same; r++) {
        for (uint64_t k = 0; k < c->n_embd && same; k++) {
            float a = gpt2_checkpoint_get(head, r, k), b = gpt2_checkpoint_get(wte, r, k);
            same = memcmp(&a, &b, sizeof a) == 0;
        }
    }
    if (!same)
        snprintf(err, errsz,
                 "lm_head.weight differs from wte.weight (row %llu): this checkpoint does not tie its output head "
                 "to the token embeddings as GPT-2 does",
                 (unsigned long long)r - 1);
    return same;
}

/* Finds every tensor the model needs and checks its shape and dtype, so
 * that a bad file is refused before anything is allocated for its weights
 * or written. */
static bool check_tensors(HfSource *src, const ModelConfig *c, char *err, size_t errsz) {
    if (!gpt2_checkpoint_find(&src->ck, "wte.weight") && gpt2_checkpoint_find(&src->ck, "transformer.wte.weight"))
        src->prefix = "transformer.";
    size_t count = gpt2_model_tensor_count(c);
    for (size_t i = 0; i < count; i++) {
        TensorSpec s;
        const CkTensor *t;
        gpt2_model_tensor_spec(c, i, &s);
        if (!find_tensor(src, &s, &t, err, errsz)) return false;
    }
    return check_leftovers(src, c, err, errsz) && check_tied_head(src, c, err, errsz);
}

/* dir/name into out; false when it does not fit. */
static bool join(char *out, size_t n, const char *dir, const char *name) {
    int k = snprintf(out, n, "%s/%s", dir, name);
    return k > 0 && (size_t)k < n;
}

static bool is_regular_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* dir/name must be a readable file; otherwise err says so, with hint. */
static bool need_file(const char *dir, const char *name, const char *hint, char *path, size_t pathsz, char *err,
                      size_t errsz) {
    if (!join(path, pathsz, dir, name)) {
        snprintf(err, errsz, "%.200s...: path too long", dir);
        return false;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errsz, "%s: %s%s", path, strerror(errno), hint);
        return false;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errsz, "%s: not a regular file%s", path, hint);
        return false;
    }
    return true;
}

/* The folder must exist before its files are looked for, so that a typo
 * in SOURCE is reported as such. */
static bool need_dir(const char *dir, const char *what, char *err, size_t errsz) {
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        snprintf(err, errsz, "%s: %s (%s)", dir, strerror(errno), what);
        return false;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "%s: not a folder (%s)", dir, what);
        return false;
    }
    return true;
}

/* ---- where the weights are ------------------------------------------------ */

typedef enum { SRC_SAFETENSORS, SRC_SAFETENSORS_SHARDED, SRC_TORCH, SRC_TORCH_SHARDED, SRC_GGUF } SourceKind;

/* The checkpoint files a folder may hold, in the order they are preferred. */
static const struct {
    const char *name;
    SourceKind kind;
} folder_weights[] = {
    {"model.safetensors", SRC_SAFETENSORS},
    {"model.safetensors.index.json", SRC_SAFETENSORS_SHARDED},
    {"pytorch_model.bin", SRC_TORCH},
    {"pytorch_model.bin.index.json", SRC_TORCH_SHARDED},
};

static bool ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && strcmp(s + n - k, tail) == 0;
}

/* What a single file given as SOURCE is, from its first bytes and name. */
static SourceKind file_kind(const char *path) {
    uint8_t head[16] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    if (gpt2_torch_is_torch(head, got)) return SRC_TORCH;
    if (gpt2_gguf_is_gguf(head, got)) return SRC_GGUF;
    if (ends_with(path, ".index.json"))
        return ends_with(path, ".bin.index.json") ? SRC_TORCH_SHARDED : SRC_SAFETENSORS_SHARDED;
    return SRC_SAFETENSORS;
}

static bool load_checkpoint(Checkpoint *ck, SourceKind kind, const char *path, char *err, size_t errsz) {
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    snprintf(ck->label, sizeof ck->label, "%s", base);
    bool ok;
    switch (kind) {
    case SRC_SAFETENSORS: ok = gpt2_shards_add_safetensors(ck, path, err, errsz); break;
    case SRC_TORCH: ok = gpt2_torch_checkpoint_add(ck, path, err, errsz); break;
    default: return gpt2_shards_add_index(ck, path, kind == SRC_TORCH_SHARDED, err, errsz);
    }
    return ok && gpt2_checkpoint_seal(ck, err, errsz);
}

/* The checkpoint in folder dir: its path and kind. */
static bool find_weights(const char *dir, char *path, size_t pathsz, SourceKind *kind, char *err, size_t errsz) {
    for (size_t i = 0; i < sizeof folder_weights / sizeof *folder_weights; i++) {
        if (join(path, pathsz, dir, folder_weights[i].name) && is_regular_file(path)) {
            *kind = folder_weights[i].kind;
            return true;
        }
    }
    return need_file(dir, "model.safetensors",
                     "; the folder has none of model.safetensors, model.safetensors.index.json, pytorch_model.bin, "
                     "pytorch_model.bin.index.json",
                     path, pathsz, err, errsz);
}

/* vocab.json and merges.txt in dir, or else its tokenizer.json (then
 * vocab_path names it and merges_path is empty). */
static bool find_tokenizer(const char *dir, const char *hint, char *vocab_path, char *merges_path, size_t pathsz,
                           char *err, size_t errsz) {
    merges_path[0] = '\0';
    if (join(vocab_path, pathsz, dir, "vocab.json") && !is_regular_file(vocab_path) &&
        join(merges_path, pathsz, dir, "merges.txt") && !is_regular_file(merges_path) &&
        join(vocab_path, pathsz, dir, "tokenizer.json") && is_regular_file(vocab_path)) {
        merges_path[0] = '\0';
        return true;
    }
    return need_file(dir, "vocab.json", hint, vocab_path, pathsz, err, errsz) &&
           need_file(dir, "merges.txt", hint, merges_path, pathsz, err, errsz);
}

/* A fine-tune with more token embeddings than its vocabulary has tokens
 * names the others, its added tokens, in added_tokens.json or in the
 * "added_tokens" of its tokenizer.json; rows that neither names (a
 * vocabulary padded to a round size) become placeholders. */
static bool add_tokens(const ConvertOptions *o, HfVocab *vocab, const char *dir, uint32_t n_vocab, char *err,
                       size_t errsz) {
    char path[4096];
    if (join(path, sizeof path, dir, "added_tokens.json") && is_regular_file(path))
        return gpt2_hf_vocab_load_added(vocab, path, false, n_vocab, err, errsz);
    if (join(path, sizeof path, dir, "tokenizer.json") && is_regular_file(path))
        return gpt2_hf_vocab_load_added(vocab, path, true, n_vocab, err, errsz);
    if (o->progress)
        fprintf(o->progress,
                "note: config.json's vocab_size %u exceeds the vocabulary's %u tokens and no "
                "added_tokens.json names the others: they become placeholders [PAD<id>]\n",
                n_vocab, vocab->data.n_vocab);
    return gpt2_hf_vocab_append_added(vocab, NULL, 0, n_vocab, "config.json", err, errsz);
}

/* Checks the tensors against c and the vocabulary, and writes the file. */
static bool write_model(const ConvertOptions *o, ModelConfig *c, HfSource *src, HfVocab *vocab, const char *vocab_name,
                        char *err, size_t errsz) {
    c->eot_id = vocab->data.eot_id;
    c->n_added = vocab->data.n_added;
    if (vocab->data.n_vocab != c->n_vocab) {
        snprintf(err, errsz, "%s has %u tokens but config.json says vocab_size %u", vocab_name, vocab->data.n_vocab,
                 c->n_vocab);
        return false;
    }
    src->progress = progress_start(o->progress, c);
    if (!check_tensors(src, c, err, errsz)) return false;
    if (o->progress)
        fprintf(o->progress, "converting %u layers, n_embd %u, n_head %u, n_ctx %u (%.1f M weights) to %s (%s)\n",
                c->n_layer, c->n_embd, c->n_head, c->n_ctx, (double)src->progress.values_total / 1e6, o->out_path,
                gpt2_dtype_name(c->dtype));
    TensorSource ts = {hf_tensor, hf_progress, src};
    bool ok = gpt2_model_write_q8_0(o->out_path, c, &vocab->data, &ts, hf_q8_0, err, errsz);
    if (!ok) progress_abandon(&src->progress);
    return ok;
}

/* A GGUF file carries its hyperparameters and tokenizer; --tokenizer
 * replaces the latter. */
static bool convert_gguf(const ConvertOptions *o, char *err, size_t errsz) {
    char vocab_path[4096], merges_path[4096];
    HfSource src = {.prefix = ""};
    ModelConfig c = {.dtype = o->dtype};
    HfVocab vocab;
    const char *tok = o->tokenizer_dir;
    if (tok && (!need_dir(tok, "the --tokenizer folder", err, errsz) ||
                !need_file(tok, "vocab.json", "", vocab_path, sizeof vocab_path, err, errsz) ||
                !need_file(tok, "merges.txt", "", merges_path, sizeof merges_path, err, errsz)))
        return false;
    const char *base = strrchr(o->source, '/') ? strrchr(o->source, '/') + 1 : o->source;
    snprintf(src.ck.label, sizeof src.ck.label, "%s", base);
    bool ok = gpt2_gguf_open(&src.ck, &c, tok ? NULL : &vocab, o->source, err, errsz) &&
              gpt2_checkpoint_seal(&src.ck, err, errsz);
    bool have_vocab = ok && !tok;
    if (ok && tok) {
        ok = gpt2_hf_vocab_load(&vocab, vocab_path, merges_path, err, errsz);
        have_vocab = ok;
        c.n_vocab = ok ? vocab.data.n_vocab : 0;
    }
    if (ok) {
        ModelConfig probe = c;
        probe.eot_id = 0;
        char why[200];
        if (!gpt2_model_config_check(&probe, why, sizeof why)) {
            snprintf(err, errsz, "%s: %s", o->source, why);
            ok = false;
        }
    }
    if (ok) ok = write_model(o, &c, &src, &vocab, tok ? vocab_path : "the GGUF tokenizer", err, errsz);
    if (have_vocab) gpt2_hf_vocab_free(&vocab);
    gpt2_checkpoint_close(&src.ck);
    return ok;
}

bool gpt2_convert_hf(const ConvertOptions *o, char *err, size_t errsz) {
    char dir[4096], config_path[4096], weights_path[4096], vocab_path[4096], merges_path[4096];
    struct stat sb;
    if (stat(o->source, &sb) != 0) {
        snprintf(err, errsz, "%s: %s (SOURCE must be a Hugging Face GPT-2 folder or a checkpoint file)", o->source,
                 strerror(errno));
        return false;
    }
    bool single_file = !S_ISDIR(sb.st_mode);
    SourceKind kind = SRC_SAFETENSORS;
    Checkpoint ck = {0};
    /* A file named on its own is read first: it is what the user pointed
     * at, and it tells what else is needed.  A folder is first checked for
     * the files it must hold. */
    if (single_file) {
        if (!S_ISREG(sb.st_mode)) {
            snprintf(err, errsz, "%s: not a regular file or folder", o->source);
            return false;
        }
        kind = file_kind(o->source);
        if (kind == SRC_GGUF) return convert_gguf(o, err, errsz);
        const char *slash = strrchr(o->source, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - o->source) : 1, slash ? o->source : ".");
        if (slash == o->source) snprintf(dir, sizeof dir, "/");
        snprintf(weights_path, sizeof weights_path, "%s", o->source);
        if (!load_checkpoint(&ck, kind, o->source, err, errsz)) {
            gpt2_checkpoint_close(&ck);
            return false;
        }
    } else {
        snprintf(dir, sizeof dir, "%s", o->source);
    }
    const char *tok_dir = o->tokenizer_dir ? o->tokenizer_dir : dir;
    const char *tok_hint =
        o->tokenizer_dir ? "" : "; give the folder holding GPT-2's vocab.json and merges.txt with --tokenizer DIR";
    bool ok = (!o->tokenizer_dir || need_dir(o->tokenizer_dir, "the --tokenizer folder", err, errsz)) &&
              need_file(dir, "config.json",
                        single_file ? "; a checkpoint file needs its model's config.json in the same folder" : "",
                        config_path, sizeof config_path, err, errsz) &&
              (single_file || find_weights(dir, weights_path, sizeof weights_path, &kind, err, errsz)) &&
              find_tokenizer(tok_dir, tok_hint, vocab_path, merges_path, sizeof vocab_path, err, errsz);
    bool tokenizer_json = ok && merges_path[0] == '\0';
    ModelConfig c = {.dtype = o->dtype};
    ok = ok && gpt2_hf_config_read(config_path, &c, err, errsz);
    if (ok && !single_file) ok = load_checkpoint(&ck, kind, weights_path, err, errsz);
    HfSource src = {.ck = ck, .prefix = ""};
    HfVocab vocab;
    if (ok)
        ok = tokenizer_json ? gpt2_hf_vocab_load_tokenizer_json(&vocab, vocab_path, err, errsz)
                            : gpt2_hf_vocab_load(&vocab, vocab_path, merges_path, err, errsz);
    if (ok) {
        ok = (vocab.data.n_vocab >= c.n_vocab || add_tokens(o, &vocab, tok_dir, c.n_vocab, err, errsz)) &&
             write_model(o, &c, &src, &vocab, vocab_path, err, errsz);
        gpt2_hf_vocab_free(&vocab);
    }
    gpt2_checkpoint_close(&src.ck);
    return ok;
}

/* ---- random models ------------------------------------------------------ */

/* A decimal number of at most 9 digits at *p, advancing *p past it. */
static bool shape_number(const char **p, uint32_t *out) {
    uint32_t v = 0;
    int digits = 0;
    for (; **p >= '0' && **p <= '9'; (*p)++) {
        if (++digits > 9) return false;
        v = v * 10 + (uint32_t)(**p - '0');
    }
    *out = v;
    return digits > 0;
}

bool gpt2_model_shape_from_name(const char *name, ModelConfig *c) {
    static const struct {
        const char *name;
        uint32_t layers, heads, embd;
    } known[] = {
        {"124M", 12, 12, 768},   {"355M", 24, 16, 1024}, {"774M", 36, 20, 1280},
        {"1558M", 48, 25, 1600}, {"distil", 6, 12, 768},
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
    /* LAYERSxHEADSxEMBD[xCTX], digits only: no signs, no spaces, nothing after. */
    uint32_t v[4];
    int n = 0;
    const char *p = name;
    for (;;) {
        if (n == 4 || !shape_number(&p, &v[n])) return false;
        n++;
        if (*p == '\0') break;
        if (*p++ != 'x') return false;
    }
    if (n < 3) return false;
    c->n_layer = v[0], c->n_head = v[1], c->n_embd = v[2];
    if (n == 4) c->n_ctx = v[3];
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
    Progress progress;
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
    progress_step(&((RandomSource *)ctx)->progress, done, total, s);
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
    v->data = (TokenizerData){n_vocab, v->offsets, v->bytes, n_merges, v->merges, n_vocab - 1, 0};
    return true;
}

bool gpt2_convert_random(const ModelConfig *c, uint64_t seed, const char *tokenizer_dir, const char *out_path,
                         FILE *progress, char *err, size_t errsz) {
    ModelConfig cfg = *c;
    HfVocab hf = {0};
    SyntheticVocab syn = {0};
    const TokenizerData *vocab;
    bool ok = true;
    if (tokenizer_dir) {
        char vocab_path[4096], merges_path[4096];
        if (!need_dir(tokenizer_dir, "the --tokenizer folder", err, errsz) ||
            !need_file(tokenizer_dir, "vocab.json", "", vocab_path, sizeof vocab_path, err, errsz) ||
            !need_file(tokenizer_dir, "merges.txt", "", merges_path, sizeof merges_path, err, errsz) ||
            !gpt2_hf_vocab_load(&hf, vocab_path, merges_path, err, errsz))
            return false;
        vocab = &hf.data;
        cfg.n_vocab = vocab->n_vocab;
    } else {
        ok = cfg.n_vocab >= 257 && synthetic_vocab(&syn, cfg.n_vocab);
        if (!ok) snprintf(err, errsz, "cannot make a synthetic vocabulary of %u tokens", cfg.n_vocab);
        vocab = &syn.data;
    }
    cfg.eot_id = vocab->eot_id;
    RandomSource src = {{seed * 0x9E3779B97F4A7C15ull + 1}, progress_start(progress, &cfg)};
    TensorSource ts = {random_tensor, random_progress, &src};
    if (ok) ok = gpt2_model_write(out_path, &cfg, vocab, &ts, err, errsz);
    if (!ok) progress_abandon(&src.progress);
    if (tokenizer_dir) gpt2_hf_vocab_free(&hf);
    free(syn.offsets);
    free(syn.bytes);
    free(syn.merges);
    return ok;
}
