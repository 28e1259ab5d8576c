/* gpt2.c - the library facade of gpt2.h over the engine's modules.
 *
 * Owns nothing but the wiring: a Gpt2 is a model file (model.h), the
 * tokenizer built on its tables (tokenizer.h), and a transformer with its
 * caches and thread pool (transformer.h).  Every call is handed to the
 * module that owns the work.  Every function of gpt2.h is defined here, and
 * only here: the modules below have gpt2_<module>_ names of their own.
 */
#include "gpt2.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpus.h"
#include "generate.h"
#include "inspect.h"
#include "kernels.h"
#include "kvfile.h"
#include "model.h"
#include "prefault.h"
#include "score.h"
#include "threadpool.h"
#include "tokenizer.h"
#include "transformer.h"

/* Rows one forward call may evaluate.  A prompt is evaluated in chunks of
 * this many positions; more rows make the matrix products more efficient
 * and cost about 40 bytes x n_embd of scratch each. */
#define MAX_ROWS 512

struct Gpt2 {
    Model model;
    Tokenizer *tok;
    Transformer tf;
    Prefault *prefault; /* a first pass's pages brought in in the background (prefault.h) */
};

const char *gpt2_version(void) { return GPT2_VERSION; }

Gpt2Params gpt2_default_params(void) {
    Gpt2Params p = {
        .n_predict = 50,
        .sampling = {.temperature = 1.0f, .top_k = 40, .top_p = 1.0f, .repeat_penalty = 1.0f, .repeat_last_n = 64},
    };
    return p;
}

Gpt2FileKind gpt2_file_kind(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return GPT2_FILE_MISSING;
    if (S_ISDIR(st.st_mode)) return GPT2_FILE_FOLDER;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return GPT2_FILE_MISSING;
    uint8_t head[4096];
    ssize_t n;
    do n = read(fd, head, sizeof head);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0) return GPT2_FILE_MISSING;
    static const Gpt2FileKind kinds[] = {
        [MODEL_KIND_UNKNOWN] = GPT2_FILE_UNKNOWN,
        [MODEL_KIND_EMPTY] = GPT2_FILE_EMPTY,
        [MODEL_KIND_MODEL] = GPT2_FILE_MODEL,
        [MODEL_KIND_GGUF] = GPT2_FILE_GGUF,
        [MODEL_KIND_SAFETENSORS] = GPT2_FILE_SAFETENSORS,
        [MODEL_KIND_PYTORCH] = GPT2_FILE_PYTORCH,
        [MODEL_KIND_LLMC] = GPT2_FILE_LLMC,
        [MODEL_KIND_LFS_POINTER] = GPT2_FILE_LFS_POINTER,
        [MODEL_KIND_TEXT] = GPT2_FILE_TEXT,
    };
    return kinds[gpt2_model_identify(head, (size_t)n, S_ISREG(st.st_mode) ? (uint64_t)st.st_size : (uint64_t)n)];
}

Gpt2 *gpt2_open(const char *path, const Gpt2Options *options, char *err, size_t errsz) {
    static const Gpt2Options defaults = {0};
    const Gpt2Options *o = options ? options : &defaults;
    char why[512];
    const KernelSet *kernels = gpt2_kernels_select(o->kernels);
    if (!kernels) {
        snprintf(err, errsz, "kernel set \"%s\" is not available on this CPU or in this build", o->kernels);
        return NULL;
    }
    StreamHints stream;
    if (!gpt2_kernels_stream_hints(o->prefetch, &stream)) {
        snprintf(err, errsz, "prefetch hint \"%s\" is not \"nta\", \"l2\" or \"none\"", o->prefetch);
        return NULL;
    }
    Gpt2 *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (!gpt2_model_open(&g->model, path, why, sizeof why)) {
        snprintf(err, errsz, "%s: %s", path, why);
        free(g);
        return NULL;
    }
    const uint32_t n_batch = o->n_batch ? o->n_batch : 1;
    const int n_threads = o->n_threads > 0 ? o->n_threads : gpt2_cpus_available();
    size_t max_rows = (size_t)g->model.config.n_ctx * n_batch;
    if (max_rows > MAX_ROWS) max_rows = n_batch > MAX_ROWS ? n_batch : MAX_ROWS;
    if (!gpt2_transformer_build(&g->tf, &g->model, kernels, n_batch, max_rows, n_threads, why, sizeof why)) {
        snprintf(err, errsz, "%s", why);
        gpt2_close(g);
        return NULL;
    }
    g->tf.stream = stream;
    /* The tokenizer is built while the prefault thread maps the weights. */
    g->prefault = gpt2_prefault_start(&g->tf);
    if (!gpt2_tokenizer_build(&g->tok, &g->model.vocab, why, sizeof why)) {
        snprintf(err, errsz, "%s: damaged model file: %s", path, why);
        gpt2_close(g);
        return NULL;
    }
    return g;
}

void gpt2_close(Gpt2 *g) {
    if (!g) return;
    gpt2_prefault_stop(g->prefault);
    if (g->tf.model) gpt2_transformer_free(&g->tf);
    gpt2_tokenizer_free(g->tok);
    gpt2_model_close(&g->model);
    free(g);
}

Gpt2Info gpt2_info(const Gpt2 *g) {
    const ModelConfig *c = &g->model.config;
    Gpt2Info info = {
        .n_vocab = c->n_vocab,
        .n_ctx = c->n_ctx,
        .n_embd = c->n_embd,
        .n_layer = c->n_layer,
        .n_head = c->n_head,
        .eot_id = (int32_t)c->eot_id,
        .dtype = gpt2_dtype_name(c->dtype),
        .kernels = g->tf.kernels->name,
        .prefetch = gpt2_kernels_stream_hints_name(g->tf.stream),
        .n_threads = gpt2_threadpool_size(g->tf.pool),
        .n_batch = (uint32_t)g->tf.n_seq,
        .file_bytes = g->model.n_bytes,
        .n_added = c->n_added,
    };
    return info;
}

bool gpt2_tokenize(Gpt2 *g, const char *text, size_t len, bool special, int32_t **ids, size_t *n_ids, char *err,
                   size_t errsz) {
    TokenList list = {0};
    if (!gpt2_tokenizer_encode(g->tok, (const uint8_t *)text, len, special, &list)) {
        gpt2_token_list_free(&list);
        snprintf(err, errsz, "out of memory");
        return false;
    }
    *ids = list.ids;
    *n_ids = list.n;
    return true;
}

const char *gpt2_token_bytes(const Gpt2 *g, int32_t id, size_t *len) {
    return (const char *)gpt2_tokenizer_token(g->tok, id, len);
}

const char *gpt2_finish_name(Gpt2Finish f) {
    switch (f) {
    case GPT2_FINISH_LENGTH: return "length";
    case GPT2_FINISH_EOS: return "eos";
    case GPT2_FINISH_STOP: return "stop";
    case GPT2_FINISH_CANCELLED: return "cancelled";
    case GPT2_FINISH_ERROR: return "error";
    default: return "none";
    }
}

void gpt2_completion_free(Gpt2Completion *c) {
    free(c->tokens);
    free(c->text);
    free(c->logprobs);
    c->tokens = NULL;
    c->text = NULL;
    c->logprobs = NULL;
    c->n_tokens = c->text_len = 0;
}

bool gpt2_generate(Gpt2 *g, Gpt2Completion *c, size_t n, const Gpt2Callbacks *cb, char *err, size_t errsz) {
    return gpt2_generate_list(&g->tf, g->tok, c, n, cb, err, errsz);
}

/* The tokens a completion with prompt ids[0..n) starts at position 0 with
 * (generate.c's window): the newest n_ctx, or <|endoftext|> alone. */
static const int32_t *prompt_window(const Gpt2 *g, const int32_t *ids, size_t *n, const int32_t *eot) {
    const size_t n_ctx = g->model.config.n_ctx;
    if (*n == 0) {
        *n = 1;
        return eot;
    }
    if (*n > n_ctx) {
        ids += *n - n_ctx;
        *n = n_ctx;
    }
    return ids;
}

bool gpt2_prompt_cache_load(Gpt2 *g, const char *path, const int32_t *ids, size_t n, size_t *n_loaded, size_t *n_cached,
                            char *err, size_t errsz) {
    const int32_t eot = gpt2_tokenizer_eot(g->tok);
    const int32_t *window = prompt_window(g, ids, &n, &eot);
    return gpt2_kvfile_read(&g->tf, 0, path, window, n, n_loaded, n_cached, err, errsz);
}

bool gpt2_prompt_cache_save(Gpt2 *g, const char *path, const int32_t *ids, size_t n, char *err, size_t errsz) {
    const int32_t eot = gpt2_tokenizer_eot(g->tok);
    const int32_t *window = prompt_window(g, ids, &n, &eot);
    for (size_t q = 0; q < g->tf.n_seq; q++)
        if (gpt2_transformer_match(&g->tf, q, window, n) == n)
            return gpt2_kvfile_write(&g->tf, q, window, n, path, err, errsz);
    snprintf(err, errsz, "the prompt's keys and values are no longer held");
    return false;
}

bool gpt2_generate_feed(Gpt2 *g, const Gpt2Feed *feed, const Gpt2Callbacks *cb, char *err, size_t errsz) {
    return gpt2_generate_run(&g->tf, g->tok, feed, cb, err, errsz);
}

bool gpt2_score(Gpt2 *g, const int32_t *ids, size_t n, bool prepend_eot, double *logprob, volatile sig_atomic_t *cancel,
                char *err, size_t errsz) {
    return gpt2_score_tokens(&g->tf, ids, n, prepend_eot, gpt2_tokenizer_eot(g->tok), logprob, 0, NULL, cancel, err,
                             errsz);
}

bool gpt2_score_logprobs(Gpt2 *g, const int32_t *ids, size_t n, bool prepend_eot, uint32_t top_k, Gpt2TokenLogprob *out,
                         volatile sig_atomic_t *cancel, char *err, size_t errsz) {
    return gpt2_score_tokens(&g->tf, ids, n, prepend_eot, gpt2_tokenizer_eot(g->tok), NULL, top_k, out, cancel, err,
                             errsz);
}

bool gpt2_logits(Gpt2 *g, const int32_t *ids, size_t n, float *logits, char *err, size_t errsz) {
    Transformer *t = &g->tf;
    const size_t n_vocab = g->model.config.n_vocab;
    if (n > g->model.config.n_ctx) {
        snprintf(err, errsz, "%zu tokens do not fit the context of %u", n, g->model.config.n_ctx);
        return false;
    }
    uint32_t *pos = malloc(t->max_rows * sizeof *pos), *seq = calloc(t->max_rows, sizeof *seq);
    bool *want = malloc(t->max_rows * sizeof *want);
    bool ok = pos && seq && want;
    if (!ok) snprintf(err, errsz, "out of memory");
    gpt2_transformer_reset(t, 0);
    for (size_t r0 = 0; ok && r0 < n; r0 += t->max_rows) {
        size_t rows = n - r0 < t->max_rows ? n - r0 : t->max_rows;
        for (size_t r = 0; r < rows; r++) {
            pos[r] = (uint32_t)(r0 + r);
            want[r] = true;
        }
        Batch b = {rows, ids + r0, pos, seq, want};
        ok = gpt2_transformer_forward(t, &b, logits + r0 * n_vocab, err, errsz);
    }
    free(pos);
    free(seq);
    free(want);
    return ok;
}

bool gpt2_inspect(Gpt2 *g, const int32_t *ids, size_t n, const Gpt2InspectOptions *options, Gpt2Inspection *x,
                  char *err, size_t errsz) {
    static const Gpt2InspectOptions defaults = {0};
    return gpt2_inspect_run(&g->tf, ids, n, options ? options : &defaults, x, err, errsz);
}

void gpt2_inspection_free(Gpt2Inspection *x) { gpt2_inspect_free(x); }
