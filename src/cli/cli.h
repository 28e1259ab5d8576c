/* cli.h - the gpt2 command line: its options, and the pieces of main.
 *
 * Owns what the user typed and how the tool answers: cli_args.c turns argv
 * into CliOptions (and nothing else: no I/O but the error message), cli_io.c
 * reads prompts and writes stdout with the errors of a Unix filter handled
 * (a closed pipe ends the run quietly, a full disk is an error),
 * cli_batch.c runs JSON Lines batches, and cli_main.c opens the model and
 * runs the chosen mode.  The engine itself is reached only through gpt2.h.
 *
 * Exit status: 0 success, 1 runtime error (missing model, unreadable
 * input, failed write), 2 usage error (bad option or value; nothing is
 * written to stdout), 130 interrupted by Ctrl-C (128 + the signal).
 */
#ifndef GPT2_CLI_H
#define GPT2_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gpt2.h"
#include "strbuf.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

#define CLI_DEFAULT_MODEL "models/gpt2-124M.bin"
#define CLI_MAX_STOPS 64
#define CLI_DEFAULT_BATCH_SIZE 16
#define CLI_MAX_LOGIT_BIAS 1024
#define CLI_DEFAULT_INSPECT_TOP 5
#define CLI_MAX_HEADS 64
#define CLI_MAX_SAMPLES 1000

typedef enum { MODE_GENERATE, MODE_BATCH, MODE_SCORE, MODE_TOKENIZE, MODE_DETOKENIZE, MODE_INSPECT } CliMode;

/* Which heads an attention map shows. */
typedef enum { HEADS_AUTO, HEADS_ALL, HEADS_MEAN, HEADS_LIST } CliHeads;

typedef struct {
    CliMode mode;
    const char *model_path;  /* -m, else $GPT2_MODEL, else CLI_DEFAULT_MODEL */
    const char *prompt;      /* -p, or NULL */
    const char *prompt_file; /* -f, or NULL; "-" is stdin */
    const char *batch_file;  /* --batch, "-" is stdin */
    bool ids;                /* --ids: the prompt is token ids */
    bool special;            /* --special: <|endoftext|> in text is the special token */
    Gpt2Params params;       /* -n, --temp, --top-k, --top-p, --repeat-*, --seed, --ignore-eos, --stop */
    bool seed_given;
    Gpt2Bytes stops[CLI_MAX_STOPS];
    Gpt2LogitBias logit_bias[CLI_MAX_LOGIT_BIAS]; /* --logit-bias */
    uint32_t samples;                             /* --samples, 0 when not given */
    const char *prompt_cache;                     /* --prompt-cache FILE, or NULL */
    bool prompt_cache_ro;                         /* --prompt-cache-ro: never write it */
    bool echo;                                    /* --echo */
    bool json;                                    /* --json */
    bool prepend_eos;                             /* --prepend-eos (scoring) */
    int n_threads;                                /* -t, 0: one per CPU the process may use (cpus.h) */
    uint32_t batch_size;                          /* --batch-size: completions run together */
    bool verbose;                                 /* -v */
    bool interactive;                             /* -i */
    const char *in_prefix, *in_suffix;            /* --in-prefix, --in-suffix: around each typed line */
    uint32_t inspect_top;                         /* --top */
    bool logit_lens;                              /* --logit-lens */
    bool attention_json;                          /* --attention-json */
    const char *attention_map;                    /* --attention-map FILE, or NULL */
    CliHeads heads;                               /* --heads */
    uint32_t head_list[CLI_MAX_HEADS];
    size_t n_heads;
    bool inspect_given; /* an option that needs --inspect */
    bool heads_given;
} CliOptions;

typedef enum { ARGS_RUN, ARGS_HELP, ARGS_VERSION, ARGS_USAGE_ERROR } ArgsResult;

/* Parses argv into o; env_model is $GPT2_MODEL (or NULL).  On a usage error
 * writes a one-line message (without "gpt2: ") to err. */
ArgsResult cli_parse_args(int argc, char **argv, const char *env_model, CliOptions *o, char *err, size_t errsz);

/* Writes the --help text to f; false when the write fails. */
bool cli_print_usage(FILE *f);

/* A numeric setting's bounds, shared by the options and by batch lines so
 * that both accept exactly the same values. */
typedef struct {
    int code;        /* the option (getopt code) */
    const char *key; /* its batch-line key, or NULL */
    bool integer;
    double lo, hi;
    const char *what; /* ends "must be ..." in messages */
} NumberRule;

const NumberRule *cli_number_rule(const char *key); /* by batch key, or NULL */
bool cli_number_fits(const NumberRule *r, double v);
void cli_apply_number(const NumberRule *r, double v, Gpt2Params *p);

/* A logit bias as --logit-bias gives it: "ID=BIAS", BIAS a number from
 * -1000 to 1000 or -inf; false when it is not one. */
bool cli_parse_logit_bias(const char *text, Gpt2LogitBias *out);
#define CLI_LOGIT_BIAS_RULE "ID=BIAS, ID a token id and BIAS a number from -1000 to 1000 or -inf"

/* ---- output ----------------------------------------------------------- */

/* stdout, written with write(2) from a buffer of its own, every error
 * noticed.  After the first failure every write is refused; closed_pipe
 * tells a reader that went away (EPIPE: end quietly) from a real failure
 * (report it, exit 1).  A signal that interrupts a blocked write (EINTR)
 * stops the output when *cancel is set (interrupted: the run then exits
 * 130 or 143), and is retried when it is not. */
typedef struct {
    FILE *f; /* stdout: only its descriptor is used */
    bool failed;
    bool closed_pipe;
    bool interrupted;
    int error;                     /* errno of the failure */
    volatile sig_atomic_t *cancel; /* the signal that asked to stop, or 0 */
    size_t len;                    /* bytes waiting in buf */
    char buf[1 << 16];
} Output;

void out_init(Output *o, FILE *f, volatile sig_atomic_t *cancel);
bool out_write(Output *o, const void *bytes, size_t n);
bool out_flush(Output *o);
/* After a signal that cut a write short (interrupted), lets the output go
 * on: for -i, where Ctrl-C ends a turn and not the run.  The bytes the cut
 * write left go out with the next flush (but for a single write of the
 * buffer's size or more, which are dropped).  A real failure stays. */
void out_resume(Output *o);

/* Appends all of file descriptor fd to text, what naming it in messages.
 * A signal that interrupts a blocked read stops the reading when *cancel
 * (may be NULL) is set: false with *interrupted true and no message;
 * otherwise the read is retried.  More than max bytes is refused. */
bool cli_read_fd(int fd, const char *what, size_t max, StrBuf *text, volatile sig_atomic_t *cancel, bool *interrupted,
                 char *err, size_t errsz);

/* ---- input ------------------------------------------------------------ */

/* Reads the prompt text as the options say: -p, -f FILE (- is stdin), both
 * (file, newline, -p), or stdin when neither is given (with a hint on
 * stderr when stdin is a terminal).  On failure writes why to err. */
bool cli_read_prompt(const CliOptions *o, StrBuf *text, char *err, size_t errsz);

/* Parses whitespace-separated token ids in [0, n_vocab) into a malloc'd
 * array.  On failure writes why to err. */
bool cli_parse_ids(const char *text, size_t len, uint32_t n_vocab, int32_t **ids, size_t *n, char *err, size_t errsz);

/* ---- modes ------------------------------------------------------------ */

/* Runs the -i mode on the prompt text (may be empty); returns the exit
 * status but for the signals, which *signalled tells (the handler must
 * stay installed, so that Ctrl-C can come more than once). */
int cli_run_interactive(Gpt2 *g, const CliOptions *o, const StrBuf *prompt, Output *out,
                        volatile sig_atomic_t *signalled);

/* Runs the --batch mode; returns the exit status. */
int cli_run_batch(Gpt2 *g, const CliOptions *o, Output *out, double load_ms, volatile sig_atomic_t *cancel);

/* Runs --inspect on the prompt's ids; returns the exit status. */
int cli_run_inspect(Gpt2 *g, const CliOptions *o, const int32_t *ids, size_t n, Output *out);

/* Appends ids as a JSON array: [1,2,3]. */
bool cli_append_ids(StrBuf *b, const int32_t *ids, size_t n);

/* Appends one token's log-probabilities as a JSON object {"id", "text",
 * "bytes", "logprob", "top": [...]} (text with U+FFFD for bytes that are
 * not valid UTF-8 on their own, bytes their raw values), or null when it
 * has no log-probability. */
bool cli_append_logprob(StrBuf *b, const Gpt2 *g, const Gpt2TokenLogprob *e);

/* The members a completion's JSON object may hold beyond its own. */
typedef struct {
    const Gpt2Bytes *prompt_text; /* adds "prompt" as a string */
    const int32_t *prompt_ids;    /* else, when not NULL, adds "prompt" as [n_prompt_ids] ids */
    size_t n_prompt_ids;
    const Gpt2TokenLogprob *prompt_logprobs; /* [n_prompt], adds "prompt_logprobs" */
    bool sample;                             /* adds "index" and "seed" */
    size_t index;
} CliJsonExtra;

/* Appends the JSON object of a finished completion (the keys the man page
 * lists; "logprobs" when the completion kept them). */
bool cli_completion_json(StrBuf *b, const Gpt2 *g, const Gpt2Completion *c, const int32_t *prompt, size_t n_prompt,
                         double load_ms, const CliJsonExtra *extra);

#endif
