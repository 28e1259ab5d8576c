/* cli_main.c - gpt2: the command line (see cli.h).
 *
 * Spine: parse the options, open the model, read the input, run one mode
 * (generate, batch, score, tokenize, detokenize), and turn what happened
 * into an exit status.  Data flows one way: input -> tokens -> engine ->
 * standard output; diagnostics go to standard error only.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "timer.h"
#include "utf8.h"

/* The signal (SIGINT, SIGTERM) that asked the run to stop, or 0.  Only the
 * first is caught: a second one kills the process as usual. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) {
    interrupted = sig;
    signal(sig, SIG_DFL);
}

/* For -i, where Ctrl-C may come once per turn: every signal is caught. */
static void on_every_interrupt(int sig) { interrupted = sig; }

static void catch_interrupts(bool every) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = every ? on_every_interrupt : on_interrupt; /* no SA_RESTART: a read ends with EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The weights are read from a mapping of the model file.  When the file
 * shrinks under it (a `cp` over it, a truncation), a read past its new end
 * raises SIGBUS.  Every complete output line has been written by then (the
 * output is flushed line by line), so the run ends here with one line and
 * status 1.  Only async-signal-safe calls. */
static void on_bus_error(int sig) {
    (void)sig;
    static const char msg[] = "gpt2: the model file changed or shrank while in use\n";
    ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)ignored;
    _exit(EXIT_RUNTIME);
}

static void catch_bus_errors(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_bus_error;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

/* A seed nobody chose: the clock and the process id, mixed. */
static uint64_t clock_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid() << 32;
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    return x;
}

/* The status a run ends with, given how standard output fared. */
static int finish_status(Output *out, int status) {
    if (!out->failed) out_flush(out);
    if (out->interrupted) return 128 + interrupted;
    if (out->failed && !out->closed_pipe) {
        fprintf(stderr, "gpt2: error writing standard output: %s\n", strerror(out->error));
        return EXIT_RUNTIME;
    }
    if (interrupted && status == 0) return 128 + interrupted; /* 130 after Ctrl-C, as a shell reports it */
    return status;
}

/* Appends to out a shell word for s: as is when it is plain, else quoted. */
static void shell_word(const char *s, StrBuf *out) {
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./+:=@%,") == strlen(s)) {
        gpt2_strbuf_append_str(out, s);
        return;
    }
    gpt2_strbuf_append_char(out, '\'');
    for (; *s; s++) {
        if (*s == '\'') gpt2_strbuf_append_str(out, "'\\''");
        else gpt2_strbuf_append_char(out, *s);
    }
    gpt2_strbuf_append_char(out, '\'');
}

/* What to do with a file gpt2_open refused, as the end of its message
 * ("; ..."), or "" when there is nothing to add.  For a checkpoint that
 * gpt2-convert reads, the exact command that makes a model file of it. */
static const char *model_hint(const char *path, char *out, size_t n) {
    const Gpt2FileKind kind = gpt2_file_kind(path);
    if (kind == GPT2_FILE_FOLDER || kind == GPT2_FILE_GGUF || kind == GPT2_FILE_SAFETENSORS ||
        kind == GPT2_FILE_PYTORCH) {
        /* models/NAME.bin, NAME the file's or folder's name without its extension */
        const char *base = path + strlen(path);
        while (base > path && base[-1] == '/') base--;
        const char *end = base;
        while (base > path && base[-1] != '/') base--;
        if (kind != GPT2_FILE_FOLDER) {
            const char *dot = end;
            while (dot > base && dot[-1] != '.') dot--;
            if (dot > base + 1) end = dot - 1; /* "x.gguf" -> "x"; ".gguf" stays */
        }
        /* Hugging Face names its files model.safetensors, pytorch_model.bin
         * and model-00001-of-00002...: then the folder names the model. */
        if (kind != GPT2_FILE_FOLDER && base > path &&
            (strncmp(base, "model", 5) == 0 || strncmp(base, "pytorch_model", 13) == 0)) {
            end = base - 1;
            while (end > path && end[-1] == '/') end--;
            base = end;
            while (base > path && base[-1] != '/') base--;
        }
        char name[256];
        snprintf(name, sizeof name, "models/%.*s.bin", end > base ? (int)(end - base) : 4, end > base ? base : "gpt2");
        StrBuf cmd = {0}, model = {0};
        gpt2_strbuf_append_str(&cmd, "gpt2-convert ");
        shell_word(path, &cmd);
        gpt2_strbuf_append_char(&cmd, ' ');
        shell_word(name, &cmd);
        shell_word(name, &model);
        snprintf(out, n, "; make a model file of it with: %s, then run gpt2 -m %s",
                 cmd.data ? cmd.data : "gpt2-convert", model.data ? model.data : name);
        gpt2_strbuf_free(&cmd);
        gpt2_strbuf_free(&model);
        return out;
    }
    if (kind == GPT2_FILE_EMPTY || kind == GPT2_FILE_TEXT || kind == GPT2_FILE_UNKNOWN || kind == GPT2_FILE_LLMC) {
        snprintf(out, n,
                 "; get a model with scripts/download-model.sh 124M, or convert Hugging Face weights with "
                 "gpt2-convert");
        return out;
    }
    return "";
}

static Gpt2 *open_model(const CliOptions *o, char *err, size_t errsz) {
    struct stat st;
    if (stat(o->model_path, &st) != 0 && errno == ENOENT) {
        snprintf(err, errsz,
                 "model file '%s' not found; get one with scripts/download-model.sh 124M (or convert one with "
                 "gpt2-convert), then give it with -m FILE or $GPT2_MODEL",
                 o->model_path);
        return NULL;
    }
    Gpt2Options go = {
        .n_threads = o->n_threads,
        .n_batch = o->mode == MODE_BATCH        ? o->batch_size
                   : o->samples > o->batch_size ? o->batch_size
                   : o->samples                 ? o->samples
                                                : 1,
        .kernels = getenv("GPT2_KERNELS"),
        .prefetch = getenv("GPT2_PREFETCH"),
    };
    return gpt2_open(o->model_path, &go, err, errsz);
}

/* The prompt as token ids: parsed with --ids, else tokenized.  Says why
 * on standard error when it cannot. */
static bool prompt_tokens(Gpt2 *g, const CliOptions *o, const StrBuf *text, int32_t **ids, size_t *n) {
    char err[256];
    if (o->ids) {
        if (cli_parse_ids(text->data, text->len, gpt2_info(g).n_vocab, ids, n, err, sizeof err)) return true;
    } else {
        if (gpt2_tokenize(g, text->data, text->len, o->special, ids, n, err, sizeof err)) return true;
    }
    fprintf(stderr, "gpt2: %s\n", err);
    return false;
}

static void warn_if_too_long(const Gpt2Info *info, size_t n) {
    if (n > info->n_ctx)
        fprintf(stderr, "gpt2: warning: the prompt has %zu tokens, more than the context of %u; using the last %u\n", n,
                info->n_ctx, info->n_ctx);
}

/* ---- --tokenize and --detokenize ---------------------------------------- */

static int run_tokenize(Gpt2 *g, const CliOptions *o, const StrBuf *text, Output *out) {
    int32_t *ids;
    size_t n;
    char err[256];
    if (!gpt2_tokenize(g, text->data, text->len, o->special, &ids, &n, err, sizeof err)) {
        fprintf(stderr, "gpt2: %s\n", err);
        return EXIT_RUNTIME;
    }
    StrBuf line = {0};
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        ok = (i == 0 || gpt2_strbuf_append_char(&line, ' ')) && gpt2_strbuf_append_u64(&line, (uint32_t)ids[i]);
        if (ok && line.len >= (1 << 16)) { /* write as we go: the text may be large */
            out_write(out, line.data, line.len);
            gpt2_strbuf_clear(&line);
        }
    }
    if (ok) ok = gpt2_strbuf_append_char(&line, '\n');
    if (ok) out_write(out, line.data, line.len);
    else fprintf(stderr, "gpt2: out of memory\n");
    gpt2_strbuf_free(&line);
    free(ids);
    return ok ? 0 : EXIT_RUNTIME;
}

static int run_detokenize(Gpt2 *g, const StrBuf *text, Output *out) {
    int32_t *ids;
    size_t n;
    char err[256];
    if (!cli_parse_ids(text->data, text->len, gpt2_info(g).n_vocab, &ids, &n, err, sizeof err)) {
        fprintf(stderr, "gpt2: %s\n", err);
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < n && !out->failed; i++) {
        size_t len;
        const char *bytes = gpt2_token_bytes(g, ids[i], &len);
        out_write(out, bytes, len);
    }
    free(ids);
    return 0;
}

/* ---- --score ---------------------------------------------------------------- */

/* Token bytes made printable on one line: backslash escapes for the
 * backslash, tabs, line breaks, other control characters and bytes that
 * are not well-formed UTF-8 (a token may hold part of a character). */
static bool append_escaped(StrBuf *b, const uint8_t *s, size_t n) {
    bool ok = true;
    for (size_t i = 0; ok && i < n;) {
        uint32_t cp;
        size_t len = gpt2_utf8_decode(s + i, n - i, &cp);
        if (len == 0) {
            ok = gpt2_strbuf_printf(b, "\\x%02X", s[i]);
            i++;
            continue;
        }
        if (cp == '\\') ok = gpt2_strbuf_append_str(b, "\\\\");
        else if (cp == '\n') ok = gpt2_strbuf_append_str(b, "\\n");
        else if (cp == '\t') ok = gpt2_strbuf_append_str(b, "\\t");
        else if (cp == '\r') ok = gpt2_strbuf_append_str(b, "\\r");
        else if (cp < 0x20 || cp == 0x7F) ok = gpt2_strbuf_printf(b, "\\x%02X", (unsigned)cp);
        else ok = gpt2_strbuf_append(b, s + i, len);
        i += len;
    }
    return ok;
}

static bool append_number_or_null(StrBuf *b, double x) {
    return isfinite(x) ? gpt2_strbuf_printf(b, "%.9g", x) : gpt2_strbuf_append_str(b, "null");
}

static bool score_report(Gpt2 *g, const CliOptions *o, const int32_t *ids, size_t n, const double *lp,
                         const Gpt2TokenLogprob *top, StrBuf *b) {
    double sum = 0;
    size_t scored = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(lp[i])) continue;
        sum -= lp[i];
        scored++;
    }
    double mean = scored ? sum / (double)scored : NAN, ppl = scored ? exp(mean) : NAN;
    bool ok = true;
    if (o->json) {
        ok = gpt2_strbuf_append_str(b, "{\"tokens\":") && cli_append_ids(b, ids, n) &&
             gpt2_strbuf_append_str(b, ",\"logprobs\":[");
        for (size_t i = 0; ok && i < n; i++)
            ok = (!i || gpt2_strbuf_append_char(b, ',')) && append_number_or_null(b, lp[i]);
        if (ok && top) {
            ok = gpt2_strbuf_append_str(b, "],\"top_logprobs\":[");
            for (size_t i = 0; ok && i < n; i++)
                ok = (!i || gpt2_strbuf_append_char(b, ',')) && cli_append_logprob(b, g, &top[i]);
        }
        ok = ok && gpt2_strbuf_append_str(b, "],\"mean_nll\":") && append_number_or_null(b, mean) &&
             gpt2_strbuf_append_str(b, ",\"perplexity\":") && append_number_or_null(b, ppl) &&
             gpt2_strbuf_append_str(b, "}\n");
        return ok;
    }
    for (size_t i = 0; ok && i < n; i++) {
        size_t len;
        const char *bytes = gpt2_token_bytes(g, ids[i], &len);
        ok = gpt2_strbuf_printf(b, "%d\t", (int)ids[i]) && append_escaped(b, (const uint8_t *)bytes, len) &&
             (isnan(lp[i]) ? gpt2_strbuf_append_str(b, "\tnan\n") : gpt2_strbuf_printf(b, "\t%.6f\n", lp[i]));
    }
    if (!ok) return false;
    if (scored)
        return gpt2_strbuf_printf(b, "# %zu tokens, %zu scored, mean NLL %.6f, perplexity %.6g\n", n, scored, mean,
                                  ppl);
    return gpt2_strbuf_printf(
        b, "# %zu tokens, none scored (the first token has no context; --prepend-eos scores it)\n", n);
}

static int run_score(Gpt2 *g, const CliOptions *o, const StrBuf *text, Output *out) {
    char err[512];
    int32_t *ids;
    size_t n;
    if (!prompt_tokens(g, o, text, &ids, &n)) return EXIT_RUNTIME;
    double *lp = malloc((n ? n : 1) * sizeof *lp);
    Gpt2TokenLogprob *top = o->params.logprobs ? malloc((n ? n : 1) * sizeof *top) : NULL;
    double t0 = now_ms();
    bool ok = lp && (top || !o->params.logprobs);
    if (!ok) snprintf(err, sizeof err, "out of memory");
    else if (top)
        ok = gpt2_score_logprobs(g, ids, n, o->prepend_eos, o->params.top_logprobs, top, &interrupted, err, sizeof err);
    else ok = gpt2_score(g, ids, n, o->prepend_eos, lp, &interrupted, err, sizeof err);
    for (size_t i = 0; ok && top && i < n; i++) lp[i] = top[i].logprob;
    int status = 0;
    if (!ok) {
        fprintf(stderr, "gpt2: %s\n", err);
        status = EXIT_RUNTIME;
    } else if (!interrupted) {
        if (o->verbose) fprintf(stderr, "gpt2: scored %zu tokens in %.0f ms\n", n, now_ms() - t0);
        StrBuf report = {0};
        if (score_report(g, o, ids, n, lp, top, &report)) out_write(out, report.data, report.len);
        else status = EXIT_RUNTIME, fprintf(stderr, "gpt2: out of memory\n");
        gpt2_strbuf_free(&report);
    }
    free(top);
    free(lp);
    free(ids);
    return status;
}

/* ---- --inspect -------------------------------------------------------------- */

static int run_inspect(Gpt2 *g, const CliOptions *o, const StrBuf *text, Output *out) {
    int32_t *ids;
    size_t n;
    if (!prompt_tokens(g, o, text, &ids, &n)) return EXIT_RUNTIME;
    int status = cli_run_inspect(g, o, ids, n, out);
    free(ids);
    return status;
}

/* ---- generation ------------------------------------------------------------- */

typedef struct {
    Output *out;
    char last; /* the last byte written, to end a terminal's line */
    bool wrote;
} Stream;

static bool stream_text(void *ctx, size_t index, const char *bytes, size_t n) {
    Stream *s = ctx;
    (void)index;
    if (n == 0) return true;
    s->last = bytes[n - 1];
    s->wrote = true;
    return out_write(s->out, bytes, n) && out_flush(s->out);
}

static void report_speed(const Gpt2 *g, const CliOptions *o, const Gpt2Completion *c, size_t n, double load_ms) {
    Gpt2Info info = gpt2_info(g);
    fprintf(stderr, "gpt2: model %s (%u layers, %s), %s kernels (prefetch %s), %d thread%s; loaded in %.1f ms\n",
            o->model_path, info.n_layer, info.dtype, info.kernels, info.prefetch, info.n_threads,
            info.n_threads == 1 ? "" : "s", load_ms);
    for (size_t i = 0; i < n; i++, c++) {
        char who[48] = "";
        if (o->samples) snprintf(who, sizeof who, "sample %zu: ", i);
        fprintf(stderr, "gpt2: %sprompt %zu token%s in %.1f ms (%.1f tokens/s)\n", who, c->n_prompt_used,
                c->n_prompt_used == 1 ? "" : "s", c->prompt_ms,
                c->prompt_ms > 0 ? (double)c->n_prompt_used * 1000 / c->prompt_ms : 0.0);
        const char *finish = gpt2_finish_name(c->finish);
        const unsigned long long seed = c->params.sampling.seed;
        size_t decoded = c->n_tokens > 1 ? c->n_tokens - 1 : 0; /* the first token came with the prompt */
        if (decoded == 0)                                       /* no step to time */
            fprintf(stderr, "gpt2: %sgenerated %zu token%s; finish: %s; seed %llu\n", who, c->n_tokens,
                    c->n_tokens == 1 ? "" : "s", finish, seed);
        else
            fprintf(stderr, "gpt2: %sgenerated %zu tokens in %.1f ms (%.1f tokens/s); finish: %s; seed %llu\n", who,
                    c->n_tokens, c->gen_ms, c->gen_ms > 0 ? (double)decoded * 1000 / c->gen_ms : 0.0, finish, seed);
    }
}

/* One generation run: its completions (the samples of one prompt) and how
 * they are printed. */
typedef struct {
    Gpt2 *g;
    const CliOptions *o;
    const StrBuf *text;
    const int32_t *ids; /* the prompt as given (empty: <|endoftext|>) */
    size_t n_ids;
    Gpt2Completion *c; /* [n] */
    size_t n;
    size_t next_to_print; /* samples before it are printed */
    bool *done;           /* [n] */
    const Gpt2TokenLogprob *prompt_logprobs;
    double load_ms;
    Stream stream;
    bool failed; /* out of memory while printing */
} GenRun;

static void print_echo(GenRun *r) {
    if (!r->o->echo) return;
    if (!r->o->ids) {
        stream_text(&r->stream, 0, r->text->data, r->text->len);
        return;
    }
    for (size_t i = 0; i < r->n_ids; i++) {
        size_t len;
        const char *bytes = gpt2_token_bytes(r->g, r->ids[i], &len);
        stream_text(&r->stream, 0, bytes, len);
    }
}

/* Prints completion i as its own JSON line, or, with samples in text, its
 * header line, the echo, its text and a newline. */
static void print_completion(GenRun *r, size_t i) {
    const CliOptions *o = r->o;
    const Gpt2Completion *c = &r->c[i];
    if (c->finish == GPT2_FINISH_ERROR) return; /* reported on standard error */
    if (!o->json && !o->samples) return;        /* streamed as it came */
    if (!o->json) {
        char head[96];
        snprintf(head, sizeof head, "=== sample %zu (seed %llu) ===\n", i, (unsigned long long)c->params.sampling.seed);
        stream_text(&r->stream, 0, head, strlen(head));
        print_echo(r);
        stream_text(&r->stream, 0, c->text, c->text_len);
        stream_text(&r->stream, 0, "\n", 1);
        return;
    }
    int32_t eot = gpt2_info(r->g).eot_id;
    Gpt2Bytes prompt = {r->text->data, r->text->len};
    CliJsonExtra extra = {.prompt_text = o->echo ? &prompt : NULL,
                          .prompt_logprobs = r->prompt_logprobs,
                          .sample = o->samples > 0,
                          .index = i};
    StrBuf json = {0};
    if (cli_completion_json(&json, r->g, c, r->n_ids ? r->ids : &eot, r->n_ids ? r->n_ids : 1, r->load_ms, &extra) &&
        gpt2_strbuf_append_char(&json, '\n')) {
        if (out_write(r->stream.out, json.data, json.len)) out_flush(r->stream.out);
    } else {
        r->failed = true;
    }
    gpt2_strbuf_free(&json);
}

/* Completion i has ended: print every one whose turn has come. */
static void gen_done(void *ctx, size_t i) {
    GenRun *r = ctx;
    r->done[i] = true;
    while (r->next_to_print < r->n && r->done[r->next_to_print]) print_completion(r, r->next_to_print++);
}

static bool gen_text(void *ctx, size_t index, const char *bytes, size_t n) {
    return stream_text(&((GenRun *)ctx)->stream, index, bytes, n);
}

/* The log-probabilities of the prompt's tokens (the first has none), for
 * --echo with --logprobs; NULL after saying why on standard error. */
static Gpt2TokenLogprob *prompt_logprobs(Gpt2 *g, const CliOptions *o, const int32_t *ids, size_t n) {
    char err[512];
    Gpt2TokenLogprob *lp = malloc((n ? n : 1) * sizeof *lp);
    if (!lp) snprintf(err, sizeof err, "out of memory");
    else if (gpt2_score_logprobs(g, ids, n, false, o->params.top_logprobs, lp, &interrupted, err, sizeof err))
        return lp;
    fprintf(stderr, "gpt2: %s\n", err);
    free(lp);
    return NULL;
}

/* ---- --prompt-cache ------------------------------------------------------ */

/* Tokens of a prompt of n the engine evaluates (its window). */
static size_t window_tokens(const Gpt2 *g, size_t n) {
    size_t n_ctx = gpt2_info(g).n_ctx;
    return n == 0 ? 1 : n > n_ctx ? n_ctx : n;
}

/* Loads what the cache file holds of the prompt.  A file that cannot be
 * used is ignored with a one-line warning (a missing one silently: this
 * run makes it).  True when the file holds exactly this prompt already. */
static bool cache_load(Gpt2 *g, const CliOptions *o, const int32_t *ids, size_t n) {
    char err[512];
    size_t loaded, cached;
    if (gpt2_prompt_cache_load(g, o->prompt_cache, ids, n, &loaded, &cached, err, sizeof err)) {
        if (o->verbose)
            fprintf(stderr, "gpt2: prompt cache %s: %zu of the prompt's tokens from it (it holds %zu)\n",
                    o->prompt_cache, loaded, cached);
        return loaded == cached && cached == window_tokens(g, n);
    }
    struct stat st;
    if (stat(o->prompt_cache, &st) == 0 || errno != ENOENT)
        fprintf(stderr, "gpt2: warning: prompt cache %s: %s; ignored%s\n", o->prompt_cache, err,
                o->prompt_cache_ro ? "" : ", and rewritten");
    return false;
}

static void cache_save(Gpt2 *g, const CliOptions *o, const int32_t *ids, size_t n) {
    char err[512];
    if (!gpt2_prompt_cache_save(g, o->prompt_cache, ids, n, err, sizeof err))
        fprintf(stderr, "gpt2: warning: prompt cache %s: not written: %s\n", o->prompt_cache, err);
    else if (o->verbose)
        fprintf(stderr, "gpt2: prompt cache %s: %zu tokens written\n", o->prompt_cache, window_tokens(g, n));
}

static int run_generate(Gpt2 *g, const CliOptions *o, const StrBuf *text, Output *out, double load_ms) {
    char err[512];
    int32_t *ids;
    size_t n;
    if (!prompt_tokens(g, o, text, &ids, &n)) return EXIT_RUNTIME;
    Gpt2Info info = gpt2_info(g);
    warn_if_too_long(&info, n);
    const size_t n_samples = o->samples ? o->samples : 1;
    GenRun r = {g, o, text, ids, n, NULL, n_samples, 0, NULL, NULL, load_ms, {out, 0, false}, false};
    r.c = calloc(n_samples, sizeof *r.c);
    r.done = calloc(n_samples, sizeof *r.done);
    Gpt2TokenLogprob *plp = NULL;
    int32_t eot = info.eot_id;
    int status = 0;
    if (!r.c || !r.done) {
        fprintf(stderr, "gpt2: out of memory\n");
        status = EXIT_RUNTIME;
    } else if (o->json && o->echo && o->params.logprobs) {
        r.prompt_logprobs = plp = prompt_logprobs(g, o, n ? ids : &eot, n ? n : 1);
        if (!plp) status = EXIT_RUNTIME;
    }
    /* One completion streams its text as it comes; samples print whole, in order. */
    bool streaming = !o->json && !o->samples;
    if (status == 0 && streaming) print_echo(&r);
    for (size_t i = 0; status == 0 && i < n_samples; i++) {
        r.c[i] = (Gpt2Completion){.prompt = ids, .n_prompt = n, .params = o->params, .stream_only = streaming};
        r.c[i].params.sampling.seed = o->params.sampling.seed + i;
    }
    Gpt2Callbacks cb = {streaming ? gen_text : NULL, gen_done, &r, &interrupted};
    bool cache_current = status == 0 && o->prompt_cache && cache_load(g, o, ids, n);
    if (status == 0 && !out->failed && !gpt2_generate(g, r.c, n_samples, &cb, err, sizeof err)) {
        fprintf(stderr, "gpt2: %s\n", err);
        status = EXIT_RUNTIME;
    }
    if (status == 0 && o->prompt_cache && !o->prompt_cache_ro && !cache_current && !interrupted && !out->failed)
        cache_save(g, o, ids, n);
    for (size_t i = 0; status == 0 && i < n_samples; i++) {
        if (r.c[i].finish != GPT2_FINISH_ERROR) continue;
        if (streaming && r.stream.wrote && r.stream.last != '\n' && isatty(fileno(out->f))) out_write(out, "\n", 1);
        out_flush(out);
        fprintf(stderr, "gpt2: %s%s\n", o->samples ? "a sample: " : "", r.c[i].error);
        status = EXIT_RUNTIME;
    }
    if (r.failed) status = EXIT_RUNTIME, fprintf(stderr, "gpt2: out of memory\n");
    /* A terminal gets its prompt back on a fresh line; a pipe gets exactly the text. */
    if (streaming && r.stream.wrote && r.stream.last != '\n' && isatty(fileno(out->f))) out_write(out, "\n", 1);
    if (o->verbose && status == 0) report_speed(g, o, r.c, n_samples, load_ms);
    for (size_t i = 0; r.c && i < n_samples; i++) gpt2_completion_free(&r.c[i]);
    free(r.c);
    free(r.done);
    free(plp);
    free(ids);
    return status;
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv) {
    CliOptions o;
    char err[1024];
    switch (cli_parse_args(argc, argv, getenv("GPT2_MODEL"), &o, err, sizeof err)) {
    case ARGS_HELP: return cli_print_usage(stdout) && fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
    case ARGS_VERSION: printf("gpt2 %s\n", GPT2_VERSION); return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
    case ARGS_USAGE_ERROR: fprintf(stderr, "gpt2: %s\n", err); return EXIT_USAGE;
    case ARGS_RUN: break;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed pipe becomes EPIPE, see cli_io.c */
    catch_bus_errors();
#ifdef __GLIBC__
    /* Blocks of 128 KiB and more (a completion's sampler tables) always get
     * pages of their own, returned when freed.  glibc would otherwise raise
     * the threshold after the first free and serve them from the heap, where
     * each calloc touches every page: a long batch would hold many more
     * pages than a short one. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    if (!o.seed_given) o.params.sampling.seed = clock_seed();

    double t0 = now_ms();
    Gpt2 *g = open_model(&o, err, sizeof err);
    if (!g) {
        char hint[1200];
        fprintf(stderr, "gpt2: %s%s\n", err, model_hint(o.model_path, hint, sizeof hint));
        return EXIT_RUNTIME;
    }
    double load_ms = now_ms() - t0;

    static Output out; /* its buffer is large */
    out_init(&out, stdout, &interrupted);
    int status = 0;
    if (o.mode == MODE_BATCH) {
        catch_interrupts(false);
        status = cli_run_batch(g, &o, &out, load_ms, &interrupted);
    } else {
        StrBuf text = {0};
        bool no_prompt = o.interactive && !o.prompt && !o.prompt_file; /* -i alone starts with a typed line */
        if (!no_prompt && !cli_read_prompt(&o, &text, err, sizeof err)) {
            fprintf(stderr, "gpt2: %s\n", err);
            status = EXIT_RUNTIME;
        } else if (o.interactive) {
            catch_interrupts(true);
            status = cli_run_interactive(g, &o, &text, &out, &interrupted);
        } else {
            catch_interrupts(false);
            switch (o.mode) {
            case MODE_TOKENIZE: status = run_tokenize(g, &o, &text, &out); break;
            case MODE_DETOKENIZE: status = run_detokenize(g, &text, &out); break;
            case MODE_SCORE: status = run_score(g, &o, &text, &out); break;
            case MODE_INSPECT: status = run_inspect(g, &o, &text, &out); break;
            default: status = run_generate(g, &o, &text, &out, load_ms); break;
            }
        }
        gpt2_strbuf_free(&text);
    }
    gpt2_close(g);
    return finish_status(&out, status);
}
