/* cli_io.c - reading prompts and writing standard output (see cli.h).
 *
 * Standard output is written with SIGPIPE ignored, so that a reader that
 * goes away shows up here as EPIPE and the run can end quietly, while any
 * other failed write (a full disk) is an error the user must hear about.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "json.h"
#include "numparse.h"

static bool stop_asked(volatile sig_atomic_t *cancel) { return cancel && *cancel; }

void out_init(Output *o, FILE *f, volatile sig_atomic_t *cancel) {
    memset(o, 0, offsetof(Output, buf));
    o->f = f;
    o->cancel = cancel;
}

/* A signal during a blocked write ends it early: with EINTR when nothing
 * was written, with a short count otherwise.  Either way the write stops
 * there when the signal asked to stop, and goes on when it did not.  (A
 * write after Ctrl-C that is not interrupted, such as the final JSON
 * object, still goes out.)  *done counts the bytes written. */
static bool write_all(Output *o, const char *p, size_t n, size_t *done) {
    *done = 0;
    while (n > 0) {
        ssize_t w = write(fileno(o->f), p, n);
        if (w <= 0 && !(w < 0 && errno == EINTR)) {
            o->failed = true;
            o->error = w < 0 ? errno : EIO;
            o->closed_pipe = o->error == EPIPE;
            return false;
        }
        bool cut = w < 0 || (size_t)w < n;
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            *done += (size_t)w;
        }
        if (cut && stop_asked(o->cancel)) {
            o->failed = o->interrupted = true;
            return false;
        }
    }
    return true;
}

bool out_write(Output *o, const void *bytes, size_t n) {
    if (o->failed) return false;
    if (n > sizeof o->buf - o->len) {
        if (!out_flush(o)) return false;
        size_t done;
        if (n >= sizeof o->buf) return write_all(o, bytes, n, &done);
    }
    memcpy(o->buf + o->len, bytes, n);
    o->len += n;
    return true;
}

void out_resume(Output *o) {
    if (o->interrupted) o->failed = o->interrupted = false;
}

/* What a cut write left stays in the buffer, for out_resume. */
bool out_flush(Output *o) {
    if (o->failed) return false;
    size_t n = o->len, done;
    o->len = 0;
    if (write_all(o, o->buf, n, &done)) return true;
    if (o->interrupted) {
        memmove(o->buf, o->buf + done, n - done);
        o->len = n - done;
    }
    return false;
}

bool cli_read_fd(int fd, const char *what, size_t max, StrBuf *text, volatile sig_atomic_t *cancel, bool *interrupted,
                 char *err, size_t errsz) {
    const size_t start = text->len;
    *interrupted = false;
    for (;;) {
        if (text->len - start > max) {
            snprintf(err, errsz, "%s: more than %zu MiB, the limit", what, max >> 20);
            return false;
        }
        if (stop_asked(cancel)) {
            *interrupted = true;
            return false;
        }
        if (!gpt2_strbuf_reserve(text, 1 << 16)) {
            snprintf(err, errsz, "%s: out of memory", what);
            return false;
        }
        ssize_t got = read(fd, text->data + text->len, text->cap - text->len - 1);
        if (got == 0) return true;
        if (got < 0) {
            if (errno == EINTR) continue; /* the loop checks cancel */
            snprintf(err, errsz, "%s: read error: %s", what, strerror(errno));
            return false;
        }
        text->len += (size_t)got;
        text->data[text->len] = '\0';
    }
}

/* Appends the whole of FILE or standard input ("-"). */
static bool read_source(const char *path, StrBuf *out, char *err, size_t errsz) {
    if (strcmp(path, "-") != 0) return gpt2_fileio_read_file(path, out, err, errsz);
    if (isatty(STDIN_FILENO)) fprintf(stderr, "gpt2: reading the prompt from the terminal; end it with Ctrl-D\n");
    bool interrupted;
    return cli_read_fd(STDIN_FILENO, "standard input", SIZE_MAX, out, NULL, &interrupted, err, errsz);
}

bool cli_read_prompt(const CliOptions *o, StrBuf *text, char *err, size_t errsz) {
    if (o->prompt_file) {
        if (!read_source(o->prompt_file, text, err, errsz)) return false;
        if (o->prompt && !gpt2_strbuf_append_char(text, '\n')) goto oom;
    } else if (!o->prompt) {
        return read_source("-", text, err, errsz);
    }
    if (o->prompt && !gpt2_strbuf_append_str(text, o->prompt)) goto oom;
    if (!text->data && !gpt2_strbuf_reserve(text, 0)) goto oom; /* an empty prompt is still a string */
    return true;
oom:
    snprintf(err, errsz, "out of memory");
    return false;
}

bool cli_parse_ids(const char *text, size_t len, uint32_t n_vocab, int32_t **ids, size_t *n, char *err, size_t errsz) {
    size_t cap = 0, count = 0;
    int32_t *list = NULL;
    size_t i = 0;
    for (;;) {
        while (i < len && isspace((unsigned char)text[i])) i++;
        if (i == len) break;
        size_t start = i;
        while (i < len && !isspace((unsigned char)text[i])) i++;
        char word[24];
        size_t wlen = i - start;
        int64_t id;
        bool ok = wlen < sizeof word;
        if (ok) {
            memcpy(word, text + start, wlen);
            word[wlen] = '\0';
            ok = gpt2_parse_int(word, 0, (int64_t)n_vocab - 1, &id);
        }
        if (!ok) {
            snprintf(err, errsz, "'%.*s' is not a token id (0 to %u)", (int)(wlen < 40 ? wlen : 40), text + start,
                     n_vocab - 1);
            free(list);
            return false;
        }
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            int32_t *grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                snprintf(err, errsz, "out of memory");
                free(list);
                return false;
            }
            list = grown;
        }
        list[count++] = (int32_t)id;
    }
    *ids = list;
    *n = count;
    return true;
}

bool cli_append_ids(StrBuf *b, const int32_t *ids, size_t n) {
    bool ok = gpt2_strbuf_append_char(b, '[');
    for (size_t i = 0; ok && i < n; i++)
        ok = (!i || gpt2_strbuf_append_char(b, ',')) && gpt2_strbuf_append_u64(b, (uint32_t)ids[i]);
    return ok && gpt2_strbuf_append_char(b, ']');
}

/* {"id", "text", "bytes", "logprob"} of one token, without the closing brace. */
static bool append_token(StrBuf *b, const Gpt2 *g, int32_t id, double logprob) {
    size_t len = 0;
    const char *bytes = gpt2_token_bytes(g, id, &len);
    bool ok = gpt2_strbuf_printf(b, "{\"id\":%d,\"text\":", (int)id) && gpt2_json_append_string(b, bytes, len) &&
              gpt2_strbuf_append_str(b, ",\"bytes\":[");
    for (size_t i = 0; ok && i < len; i++) ok = gpt2_strbuf_printf(b, i ? ",%u" : "%u", (unsigned)(uint8_t)bytes[i]);
    return ok && gpt2_strbuf_printf(b, "],\"logprob\":%.9g", logprob);
}

bool cli_append_logprob(StrBuf *b, const Gpt2 *g, const Gpt2TokenLogprob *e) {
    if (!isfinite(e->logprob)) return gpt2_strbuf_append_str(b, "null");
    bool ok = append_token(b, g, e->id, e->logprob) && gpt2_strbuf_append_str(b, ",\"top\":[");
    for (uint32_t i = 0; ok && i < e->n_top; i++)
        ok = (!i || gpt2_strbuf_append_char(b, ',')) && append_token(b, g, e->top[i].id, e->top[i].logprob) &&
             gpt2_strbuf_append_char(b, '}');
    return ok && gpt2_strbuf_append_str(b, "]}");
}

static bool append_logprobs(StrBuf *b, const Gpt2 *g, const char *key, const Gpt2TokenLogprob *lp, size_t n) {
    bool ok = gpt2_strbuf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; ok && i < n; i++)
        ok = (!i || gpt2_strbuf_append_char(b, ',')) && cli_append_logprob(b, g, &lp[i]);
    return ok && gpt2_strbuf_append_char(b, ']');
}

bool cli_completion_json(StrBuf *b, const Gpt2 *g, const Gpt2Completion *c, const int32_t *prompt, size_t n_prompt,
                         double load_ms, const CliJsonExtra *extra) {
    static const CliJsonExtra none = {0};
    const CliJsonExtra *x = extra ? extra : &none;
    bool ok = gpt2_strbuf_append_char(b, '{');
    if (ok && x->sample)
        ok = gpt2_strbuf_printf(b, "\"index\":%zu,\"seed\":%llu,", x->index,
                                (unsigned long long)c->params.sampling.seed);
    if (ok && x->prompt_text)
        ok = gpt2_strbuf_append_str(b, "\"prompt\":") &&
             gpt2_json_append_string(b, x->prompt_text->bytes, x->prompt_text->len) && gpt2_strbuf_append_char(b, ',');
    else if (ok && x->prompt_ids)
        ok = gpt2_strbuf_append_str(b, "\"prompt\":") && cli_append_ids(b, x->prompt_ids, x->n_prompt_ids) &&
             gpt2_strbuf_append_char(b, ',');
    ok = ok && gpt2_strbuf_append_str(b, "\"prompt_tokens\":") && cli_append_ids(b, prompt, n_prompt);
    if (ok && x->prompt_logprobs) ok = append_logprobs(b, g, "prompt_logprobs", x->prompt_logprobs, n_prompt);
    ok = ok && gpt2_strbuf_append_str(b, ",\"completion_tokens\":") && cli_append_ids(b, c->tokens, c->n_tokens);
    if (ok && c->logprobs) ok = append_logprobs(b, g, "logprobs", c->logprobs, c->n_tokens);
    ok = ok && gpt2_strbuf_append_str(b, ",\"completion\":") && gpt2_json_append_string(b, c->text, c->text_len) &&
         gpt2_strbuf_printf(b, ",\"finish_reason\":\"%s\"", gpt2_finish_name(c->finish)) &&
         gpt2_strbuf_printf(b,
                            ",\"timings\":{\"load_ms\":%.3f,\"prompt_tokens\":%zu,\"prompt_evaluated\":%zu,"
                            "\"prompt_ms\":%.3f,\"gen_tokens\":%zu,\"gen_ms\":%.3f}}",
                            load_ms, c->n_prompt_used, c->n_prompt_evaluated, c->prompt_ms, c->n_tokens, c->gen_ms);
    return ok;
}
