/* cli_interactive.c - the -i mode: a text that the user and the model
 * write in turns (see cli.h).
 *
 * Spine: continue the prompt (when there is one), then read a line, append
 * it (wrapped in --in-prefix and --in-suffix) to the text so far, continue,
 * and repeat until end of input.  The text so far lives here as tokens;
 * each turn hands all of it to gpt2_generate, whose prefix sharing finds
 * the keys and values of the previous turn still in the sequence, so only
 * the new tokens are evaluated.  When the text no longer leaves room in the
 * context, it keeps its newest half, as generation does.
 *
 * Standard output holds the text so far, in order: the prompt, each
 * continuation, the prefixes and suffixes, and, when standard input is not
 * a terminal, each line read (a terminal shows what is typed itself).
 *
 * Signals: Ctrl-C during a continuation ends it and returns to the prompt;
 * at the prompt it ends the program (130), as SIGTERM does anywhere (143).
 * End of input (Ctrl-D) ends it with 0.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

typedef struct {
    Gpt2 *g;
    const CliOptions *o;
    Output *out;
    volatile sig_atomic_t *signalled;
    bool terminal; /* standard input is a terminal */
    int32_t *text; /* [n_text] the text so far, as tokens */
    size_t n_text, cap;
    char last; /* the last byte written */
    bool wrote;
    size_t turn;
} Session;

static bool show(Session *s, const char *bytes, size_t n) {
    if (n == 0) return true;
    s->last = bytes[n - 1];
    s->wrote = true;
    return out_write(s->out, bytes, n) && out_flush(s->out);
}

static bool on_text(void *ctx, size_t index, const char *bytes, size_t n) {
    (void)index;
    return show(ctx, bytes, n);
}

static bool append_tokens(Session *s, const int32_t *ids, size_t n) {
    if (s->n_text + n > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        while (cap < s->n_text + n) cap *= 2;
        int32_t *grown = realloc(s->text, cap * sizeof *grown);
        if (!grown) return false;
        s->text = grown;
        s->cap = cap;
    }
    memcpy(s->text + s->n_text, ids, n * sizeof *ids);
    s->n_text += n;
    return true;
}

/* Appends bytes to the text so far, as tokens, and shows them when asked. */
static bool append_text(Session *s, const char *bytes, size_t n, bool visible) {
    if (n == 0) return true;
    int32_t *ids;
    size_t n_ids;
    char err[256];
    if (!gpt2_tokenize(s->g, bytes, n, s->o->special, &ids, &n_ids, err, sizeof err)) return false;
    bool ok = append_tokens(s, ids, n_ids);
    free(ids);
    return ok && (!visible || show(s, bytes, n));
}

/* Keeps the newest half of the context when the text leaves no room to
 * generate. */
static void fit_context(Session *s) {
    const size_t n_ctx = gpt2_info(s->g).n_ctx;
    if (s->n_text < n_ctx) return;
    size_t keep = n_ctx / 2 > 0 ? n_ctx / 2 : 1;
    memmove(s->text, s->text + s->n_text - keep, keep * sizeof *s->text);
    s->n_text = keep;
}

/* Continues the text so far; false on a failure that ends the session
 * (with the reason on standard error).  *cancelled tells a continuation
 * that Ctrl-C ended. */
static bool continue_text(Session *s, bool *cancelled) {
    char err[512];
    fit_context(s);
    Gpt2Completion c = {.prompt = s->text, .n_prompt = s->n_text, .params = s->o->params};
    c.params.sampling.seed = s->o->params.sampling.seed + s->turn++;
    Gpt2Callbacks cb = {on_text, NULL, s, s->signalled};
    bool ok = gpt2_generate(s->g, &c, 1, &cb, err, sizeof err);
    /* A Ctrl-C that came while the terminal held a write back cut that
     * write short: the turn ends there, the session goes on. */
    if (*s->signalled == SIGINT) out_resume(s->out);
    if (!ok) {
        fprintf(stderr, "gpt2: %s\n", err);
    } else if (c.finish == GPT2_FINISH_ERROR) {
        fprintf(stderr, "%sgpt2: %s\n", s->wrote && s->last != '\n' ? "\n" : "", c.error);
        ok = false;
    } else {
        if (s->o->verbose)
            fprintf(stderr, "%sgpt2: turn %zu: %zu of %zu prompt tokens evaluated, %zu generated; finish: %s\n",
                    s->wrote && s->last != '\n' ? "\n" : "", s->turn - 1, c.n_prompt_evaluated, c.n_prompt_used,
                    c.n_tokens, gpt2_finish_name(c.finish));
        ok = append_tokens(s, c.tokens, c.n_tokens);
        if (!ok) fprintf(stderr, "gpt2: out of memory\n");
    }
    *cancelled = c.finish == GPT2_FINISH_CANCELLED;
    gpt2_completion_free(&c);
    return ok && !s->out->failed;
}

/* Reads one line (its newline included, if it has one) into line; false at
 * the end of input or when a signal came. */
static bool read_line(Session *s, char **line, size_t *cap, size_t *len) {
    if (s->terminal) {
        fprintf(stderr, "%s> ", s->wrote && s->last != '\n' ? "\n" : "");
        fflush(stderr);
    }
    /* A terminal gives one line per read, so waiting here loses nothing
     * that stdio holds; and a Ctrl-C that came just before the read is
     * seen, rather than lost while the read waits. */
    while (s->terminal) {
        if (*s->signalled) return false;
        struct pollfd pfd = {STDIN_FILENO, POLLIN, 0};
        int ready = poll(&pfd, 1, 100);
        if (ready > 0 || (ready < 0 && errno != EINTR)) break; /* EINTR: look at the flag again */
    }
    errno = 0;
    ssize_t n = getline(line, cap, stdin);
    if (n < 0) return false;
    *len = (size_t)n;
    return true;
}

int cli_run_interactive(Gpt2 *g, const CliOptions *o, const StrBuf *prompt, Output *out,
                        volatile sig_atomic_t *signalled) {
    Session s = {.g = g, .o = o, .out = out, .signalled = signalled, .terminal = isatty(STDIN_FILENO)};
    int status = 0;
    bool cancelled = false, ok = true;
    if (prompt->len > 0) ok = append_text(&s, prompt->data, prompt->len, true) && continue_text(&s, &cancelled);
    char *line = NULL;
    size_t line_cap = 0, len = 0;
    while (ok) {
        if (*signalled == SIGTERM || (*signalled && !cancelled)) break; /* at the prompt */
        *signalled = 0;
        if (!out_flush(out)) break; /* what a Ctrl-C cut short, before the prompt */
        if (!read_line(&s, &line, &line_cap, &len)) {
            if (ferror(stdin) && !*signalled) {
                fprintf(stderr, "gpt2: error reading standard input: %s\n", strerror(errno ? errno : EIO));
                status = EXIT_RUNTIME;
            }
            break; /* end of input, or Ctrl-C at the prompt */
        }
        const char *pre = o->in_prefix ? o->in_prefix : "", *suf = o->in_suffix ? o->in_suffix : "";
        ok = append_text(&s, pre, strlen(pre), true) && append_text(&s, line, len, !s.terminal) &&
             append_text(&s, suf, strlen(suf), true);
        if (!ok && !out->failed) fprintf(stderr, "gpt2: out of memory\n");
        if (s.terminal && len > 0 && line[len - 1] == '\n') s.last = '\n'; /* the terminal echoed it */
        ok = ok && continue_text(&s, &cancelled);
    }
    if (!ok && status == 0 && !out->failed) status = EXIT_RUNTIME;
    if (s.wrote && s.last != '\n' && isatty(fileno(out->f))) out_write(out, "\n", 1);
    free(line);
    free(s.text);
    return status;
}
