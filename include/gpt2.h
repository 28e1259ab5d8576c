/* gpt2.h - the gpt2 engine as a library: load a model, tokenize, generate,
 * score.
 *
 * This is the whole public contract.  The command-line tool is one client
 * of it; a test or a server can be another.  A Gpt2 owns an opened model
 * file (mapped, used in place), its tokenizer, the kernels chosen for this
 * CPU, a thread pool and the key/value caches of up to n_batch sequences.
 *
 * Results never depend on the thread count or on what else is in a batch:
 * the same request and seed give the same tokens, byte for byte.
 *
 * Errors: functions that can fail return false (or NULL) and write a
 * one-line reason, without a trailing newline, into err[errsz].
 *
 * Threads: a Gpt2 may be used by one thread at a time.  Decoding and token
 * lookups only read it.
 *
 * Bytes: text goes in and comes out as `const char *` with a length; it
 * may hold any bytes, NUL included, and need not be valid UTF-8.
 *
 * Names: everything this header declares, and every symbol of libgpt2,
 * starts with gpt2_ or Gpt2 (GPT2_ for macros).  The API may change before
 * version 1.0; CHANGELOG.md says how.
 */
#ifndef GPT2_H
#define GPT2_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a shared libgpt2 exports: these functions and nothing else. */
#if defined(_WIN32)
#define GPT2_API
#elif defined(__GNUC__)
#define GPT2_API __attribute__((visibility("default")))
#else
#define GPT2_API
#endif

/* The library's version, "MAJOR.MINOR.PATCH", as libgpt2 was built. */
GPT2_API const char *gpt2_version(void);

typedef struct Gpt2 Gpt2;

/* ---- opening a model ------------------------------------------------------ */

typedef struct {
    int n_threads;       /* 0: one per CPU of the affinity mask, within the cgroup's CPU quota */
    uint32_t n_batch;    /* completions that may run at once; 0 means 1 */
    const char *kernels; /* NULL: the fastest this CPU runs; or "portable", "avx2", "avxvnni", "avx512" */
    /* How the kernels prefetch the weights they stream: NULL chooses for
     * this CPU; "nta" (non-temporal), "l2" (into the L2 cache) or "none"
     * (the hardware prefetchers alone) everywhere.  Speed only: the
     * results are the same. */
    const char *prefetch;
} Gpt2Options;

typedef struct {
    uint32_t n_vocab, n_ctx, n_embd, n_layer, n_head;
    int32_t eot_id;       /* <|endoftext|> */
    const char *dtype;    /* of the weight matrices: "f32", "f16", "bf16", "q8_0" */
    const char *kernels;  /* the kernel set in use */
    const char *prefetch; /* the prefetch hint in use: "nta", "l2", "none", or two as "nta, none for one row" */
    int n_threads;
    uint32_t n_batch;
    uint64_t file_bytes;
    uint32_t n_added; /* added special tokens (a fine-tune's <|pad|>, ...): the last n_added ids */
} Gpt2Info;

/* What the file or folder at path is, for a caller that wants to say more
 * than gpt2_open's error: a gpt2 model file, or something else that people
 * hold GPT-2 in.  Reads at most its first 4 KiB. */
typedef enum {
    GPT2_FILE_UNKNOWN, /* none of the below */
    GPT2_FILE_MISSING, /* no such file, or it cannot be read */
    GPT2_FILE_EMPTY,
    GPT2_FILE_FOLDER,      /* a folder: a Hugging Face checkpoint, perhaps */
    GPT2_FILE_MODEL,       /* a gpt2 model file (or the start of one) */
    GPT2_FILE_GGUF,        /* llama.cpp */
    GPT2_FILE_SAFETENSORS, /* Hugging Face weights */
    GPT2_FILE_PYTORCH,     /* torch.save, zip or legacy (pytorch_model.bin) */
    GPT2_FILE_LLMC,        /* an llm.c checkpoint */
    GPT2_FILE_LFS_POINTER, /* a Git LFS pointer instead of the file */
    GPT2_FILE_TEXT
} Gpt2FileKind;

GPT2_API Gpt2FileKind gpt2_file_kind(const char *path);

/* Opens the model file at path (NULL options: the defaults). */
GPT2_API Gpt2 *gpt2_open(const char *path, const Gpt2Options *options, char *err, size_t errsz);
GPT2_API void gpt2_close(Gpt2 *g);
GPT2_API Gpt2Info gpt2_info(const Gpt2 *g);

/* ---- tokens ------------------------------------------------------------------ */

/* Encodes text[0..len), any bytes at all, into a malloc'd array of ids
 * (*ids, *n_ids; free it with free()).  With special, "<|endoftext|>" in the
 * text becomes the end-of-text id, and the text of each added token (a
 * fine-tune's "<|pad|>", say) its id, the longest where two start at the
 * same place; otherwise all of it is ordinary text, as in OpenAI's encoder.
 * Fails only when memory runs out. */
GPT2_API bool gpt2_tokenize(Gpt2 *g, const char *text, size_t len, bool special, int32_t **ids, size_t *n_ids,
                            char *err, size_t errsz);

/* The bytes of token id, or NULL when id is not in the vocabulary.  A token
 * may be part of a UTF-8 character. */
GPT2_API const char *gpt2_token_bytes(const Gpt2 *g, int32_t id, size_t *len);

/* ---- generation -------------------------------------------------------------- */

typedef struct {
    const char *bytes;
    size_t len;
} Gpt2Bytes;

/* A number added to one token's logit before sampling; -INFINITY bans the
 * token. */
typedef struct {
    int32_t id;
    float bias;
} Gpt2LogitBias;

/* Temperatures below this (NaN included) choose greedily, as 0 does. */
#define GPT2_MIN_TEMPERATURE 1e-4f

/* The sampling settings, applied in this order:
 *   1. the logit bias;
 *   2. the penalties: repetition (each distinct token among the last
 *      repeat_last_n of prompt and completion), presence and frequency
 *      (the completion's tokens only, as in OpenAI's API: logit -=
 *      presence_penalty if the token occurred, and frequency_penalty times
 *      its count), no-repeat n-gram (as in Hugging Face: a token that would
 *      complete an n-gram already among the tokens in the context is
 *      banned);
 *   3. at temperature 0 (below GPT2_MIN_TEMPERATURE), the argmax;
 *   4. otherwise temperature, top-k, softmax, top-p, min-p (drops tokens
 *      less likely than min_p times the likeliest), and the draw.
 * NaN and infinite logits (a damaged model) are never chosen.  When no
 * token is left with a finite logit, the completion ends with
 * GPT2_FINISH_ERROR. */
typedef struct {
    float temperature;      /* 0: greedy */
    uint32_t top_k;         /* 0: off */
    float top_p;            /* 1: off */
    float repeat_penalty;   /* 1: off */
    uint32_t repeat_last_n; /* tokens the penalty looks back over, at most the context length */
    uint64_t seed;
    float min_p;                     /* 0: off */
    float presence_penalty;          /* 0: off */
    float frequency_penalty;         /* 0: off */
    uint32_t no_repeat_ngram;        /* n-gram size; 0: off */
    const Gpt2LogitBias *logit_bias; /* [n_logit_bias]; ids must be in the vocabulary */
    size_t n_logit_bias;
} Gpt2Sampling;

/* ---- log-probabilities ---- */

#define GPT2_MAX_TOP_LOGPROBS 20

typedef struct {
    int32_t id;
    double logprob; /* natural log */
} Gpt2TopLogprob;

/* A token's log-probability under the model's own distribution at its
 * position (before temperature, penalties, bias and truncation, as in
 * OpenAI's API), and the n_top likeliest tokens there, likeliest first
 * (equal ones by lower id).  logprob is NaN, and n_top 0, where there is no
 * distribution: the first token of a text. */
typedef struct {
    int32_t id;
    double logprob;
    uint32_t n_top;
    Gpt2TopLogprob top[GPT2_MAX_TOP_LOGPROBS];
} Gpt2TokenLogprob;

typedef struct {
    uint32_t n_predict; /* new tokens at most */
    Gpt2Sampling sampling;
    bool ignore_eos;        /* go on past <|endoftext|> */
    const Gpt2Bytes *stops; /* [n_stops] stop strings, none empty */
    size_t n_stops;
    bool logprobs;         /* keep each generated token's Gpt2TokenLogprob (not with stream_only) */
    uint32_t top_logprobs; /* with them, the likeliest tokens at each step, 0 to GPT2_MAX_TOP_LOGPROBS */
} Gpt2Params;

/* The defaults of the command line: 50 tokens, temperature 1, top-k 40,
 * top-p 1, no repetition penalty (last 64 tokens when set), seed 0. */
GPT2_API Gpt2Params gpt2_default_params(void);

typedef enum {
    GPT2_FINISH_NONE,
    GPT2_FINISH_LENGTH,    /* n_predict tokens */
    GPT2_FINISH_EOS,       /* <|endoftext|> */
    GPT2_FINISH_STOP,      /* a stop string */
    GPT2_FINISH_CANCELLED, /* *cancel was set, or on_text returned false */
    GPT2_FINISH_ERROR      /* the request could not go on: see the completion's error */
} Gpt2Finish;

GPT2_API const char *gpt2_finish_name(Gpt2Finish f); /* "length", "eos", "stop", "cancelled", "error" */

/* One completion: the request, then what became of it. */
typedef struct {
    const int32_t *prompt; /* [n_prompt]; empty means <|endoftext|> */
    size_t n_prompt;
    Gpt2Params params;
    bool stream_only; /* keep no tokens or text: on_text gets them all, memory stays bounded */

    /* Results, owned by the completion: release with gpt2_completion_free. */
    int32_t *tokens; /* [n_tokens] generated ids (a final <|endoftext|> not included); NULL if stream_only */
    size_t n_tokens; /* counted even when stream_only */
    char *text;      /* [text_len] their bytes, cut before a stop string; NUL-terminated; NULL if stream_only */
    Gpt2TokenLogprob *logprobs; /* [n_tokens] with params.logprobs, else NULL */
    size_t text_len;
    Gpt2Finish finish;
    const char *error;         /* with GPT2_FINISH_ERROR: why, one line (a static string); else NULL */
    size_t n_prompt_used;      /* prompt tokens kept (fewer than n_prompt when it overflowed the context) */
    size_t n_prompt_evaluated; /* prompt tokens this completion evaluated itself; the rest came from a shared
                                  prefix or a prompt cache */
    double prompt_ms;          /* from the start until the first token was sampled */
    double gen_ms;             /* from then to the end */
} Gpt2Completion;

typedef struct {
    /* Bytes of completion `index` that are final: never inside a UTF-8
     * character, never a possible start of a stop string.  Return false to
     * cancel everything.  May be NULL. */
    bool (*on_text)(void *ctx, size_t index, const char *bytes, size_t n);
    /* Completion `index` has ended; its results are complete.  May be NULL. */
    void (*on_done)(void *ctx, size_t index);
    void *ctx;
    /* When not NULL and it becomes nonzero, running completions end as
     * cancelled (a signal handler may set it). */
    volatile sig_atomic_t *cancel;
} Gpt2Callbacks;

/* Runs the completions c[0..n), up to n_batch at a time, each exactly as it
 * would run alone.  Past the context length a completion keeps its newest
 * n_ctx/2 tokens and goes on.
 *
 * Prompts are never computed twice where it can be helped: a completion
 * starts from a copy of the keys and values of the longest prefix of its
 * prompt that any sequence holds (a completion running beside it, one run
 * before it, in this call or an earlier one), or waits for a running
 * completion that is evaluating a longer one.  Identical prompts (samples
 * of one prompt with different seeds) are evaluated once.  The shared
 * keys and values are read in place, not copied, while their holder keeps
 * them (so N completions of one long prompt hold one copy of it); either
 * way they are the same bits, so results do not change.
 * n_prompt_evaluated says what a completion evaluated itself.  Returns false only on a failure that is not a
 * completion's own (out of memory); release every completion with
 * gpt2_completion_free whatever the outcome. */
GPT2_API bool gpt2_generate(Gpt2 *g, Gpt2Completion *c, size_t n, const Gpt2Callbacks *cb, char *err, size_t errsz);
GPT2_API void gpt2_completion_free(Gpt2Completion *c);

/* Completions that arrive over time (lines of a pipe).  next() returns the
 * next completion to run, or NULL: with wait false, "none ready yet" (the
 * running ones go on, and next is asked again after a step); with wait true
 * (nothing is running), "no more".  The completion must stay valid until its
 * on_done.  The callbacks' index is the order in which next() returned it,
 * from 0. */
typedef struct {
    Gpt2Completion *(*next)(void *ctx, bool wait);
    void *ctx;
} Gpt2Feed;

/* Runs what feed gives, as gpt2_generate runs an array, until next(ctx,
 * true) returns NULL or a cancel.  After a cancel, next is not asked
 * again.  False only on a failure that is not a completion's own; then the
 * completions handed over and not yet done have no results. */
/* ---- prompt cache ------------------------------------------------------------- */

/* A prompt's keys and values on disk, for runs that repeat a prefix.  The
 * file holds the token ids, the keys and values exactly as computed (f32:
 * 2 x n_layer x n_embd x 4 bytes a token, about 75 MB per 1024 tokens for
 * 124M), and the identity of the model file: its size and a hash of its
 * header, tensor directory and the first and last 4 KiB of every tensor
 * (about 1 MiB read, whatever the model's size).
 *
 * gpt2_prompt_cache_load reads the file at path and keeps the keys and
 * values of the longest common prefix of its tokens and the prompt
 * ids[0..n) where the next gpt2_generate finds them: a completion with that
 * prompt evaluates only the rest, with the same results.  *n_loaded gets
 * the tokens taken, *n_cached those the file holds.  False, nothing
 * loaded, with the reason in err, when the file is missing, damaged,
 * truncated, from another version of the format or from another model
 * file. */
GPT2_API bool gpt2_prompt_cache_load(Gpt2 *g, const char *path, const int32_t *ids, size_t n, size_t *n_loaded,
                                     size_t *n_cached, char *err, size_t errsz);

/* Writes the keys and values of the prompt ids[0..n) to path, through a
 * temporary file renamed into place.  The prompt must have been evaluated
 * by the last gpt2_generate (its sequence still holds it). */
GPT2_API bool gpt2_prompt_cache_save(Gpt2 *g, const char *path, const int32_t *ids, size_t n, char *err, size_t errsz);

GPT2_API bool gpt2_generate_feed(Gpt2 *g, const Gpt2Feed *feed, const Gpt2Callbacks *cb, char *err, size_t errsz);

/* ---- scoring and logits -------------------------------------------------- */

/* logprob[i] = ln p(ids[i] | ids[0..i)), for i < n.  logprob[0] is NaN unless
 * prepend_eot, which conditions the text on a leading <|endoftext|>.  Texts
 * longer than the context go through windows that give every token at
 * least n_ctx/2 tokens of history.  Stops early, leaving NaNs, when *cancel
 * becomes nonzero. */
GPT2_API bool gpt2_score(Gpt2 *g, const int32_t *ids, size_t n, bool prepend_eot, double *logprob,
                         volatile sig_atomic_t *cancel, char *err, size_t errsz);

/* gpt2_score with the likeliest alternatives: out[i] describes ids[i] and
 * the top_k (at most GPT2_MAX_TOP_LOGPROBS) likeliest tokens at its
 * position; out[0] has none unless prepend_eot. */
GPT2_API bool gpt2_score_logprobs(Gpt2 *g, const int32_t *ids, size_t n, bool prepend_eot, uint32_t top_k,
                                  Gpt2TokenLogprob *out, volatile sig_atomic_t *cancel, char *err, size_t errsz);

/* The logits of every position of ids[0..n), n <= n_ctx, evaluated from an
 * empty context: logits[i * n_vocab + v]. */
GPT2_API bool gpt2_logits(Gpt2 *g, const int32_t *ids, size_t n, float *logits, char *err, size_t errsz);

/* ---- inspection -------------------------------------------------------------- */

typedef struct {
    uint32_t top_k;            /* likeliest next tokens kept per position; 0 means 5 */
    uint32_t attention_window; /* attention kept among the last this many positions; 0: all of them */
    bool logit_lens;           /* also apply the output head to the residual after every layer */
} Gpt2InspectOptions;

typedef struct {
    int32_t id;  /* -1 where fewer tokens than asked have a probability */
    double prob; /* the model's own probability: no temperature or truncation */
} Gpt2TokenProb;

/* How the model processes a prompt, exactly as computed.  Arrays are
 * row-major with the shapes given; free with gpt2_inspection_free. */
typedef struct {
    size_t n; /* positions: the prompt's tokens */
    uint32_t n_layer, n_head, n_embd, n_vocab, n_ctx;
    uint32_t top_k;  /* entries per position in top */
    uint32_t window; /* w: the attention kept covers positions n-w .. n-1 */

    /* Embeddings: L2 norms of wte[id], wpe[pos] and of their sum, [n]. */
    double *norm_wte, *norm_wpe, *norm_sum;

    /* Attention (softmax weights, 0 above the diagonal). */
    float *attention;           /* [n_layer][n_head][w][w]: queries n-w+i over keys n-w+j */
    float *attention_last;      /* [n_layer][n_head][n]: the last position over every key */
    double *attention_distance; /* [n_layer][n_head]: mean over queries q of sum_k p(q,k) (q - k) */

    /* The next-token distribution after each position. */
    Gpt2TokenProb *top;   /* [n][top_k] likeliest first */
    double *entropy_bits; /* [n] */
    uint32_t *next_rank;  /* [n] rank of ids[i+1] after position i (1: likeliest); 0 at the last */
    double *next_prob;    /* [n] its probability; NaN at the last */

    /* The logit lens, NULL unless asked: the argmax of LN_f(residual after
     * layer l) . wte^T at each position, its probability, and its logit
     * minus the runner-up's. */
    int32_t *lens_id;    /* [n_layer][n] */
    double *lens_prob;   /* [n_layer][n] */
    double *lens_margin; /* [n_layer][n] */
} Gpt2Inspection;

/* Evaluates ids[0..n), 1 <= n <= n_ctx, from an empty context and fills *x
 * (NULL options: the defaults).  Costs one forward pass plus the head at
 * every position (and at every layer with the logit lens).  On failure
 * *x holds nothing to free. */
GPT2_API bool gpt2_inspect(Gpt2 *g, const int32_t *ids, size_t n, const Gpt2InspectOptions *options, Gpt2Inspection *x,
                           char *err, size_t errsz);
GPT2_API void gpt2_inspection_free(Gpt2Inspection *x);

#ifdef __cplusplus
}
#endif

#endif
