/* cli_io.c - reading prompts and writing standard output (see cli.h).
 *
 * Standard output is written with SIGPIPE ignored, so that a reader that
 * goes away shows up here as EPIPE and the run can end quietly, while any
 * other failed write (a full disk) is an error the user must hear about.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "json.h"
#include "numparse.h"

static void note_failure(Output *o) {
    o->failed = true;
    o->error = errno ? errno : EIO;
    o->closed_pipe = o->error == EPIPE;
}

bool out_write(Output *o, const void *bytes, size_t n) {
    if (o->failed) return false;
    if (n == 0) return true;
    errno = 0;
    if (fwrite(bytes, 1, n, o->f) != n) {
        note_failure(o);
        return false;
    }
    return true;
}

bool out_flush(Output *o) {
    if (o->failed) return false;
    errno = 0;
    if (fflush(o->f) != 0) {
        note_failure(o);
        return false;
    }
    return true;
}

/* Appends the whole of FILE or standard input ("-"). */
static bool read_source(const char *path, StrBuf *out, char *err, size_t errsz) {
    if (strcmp(path, "-") != 0) return gpt2_fileio_read_file(path, out, err, errsz);
    if (isatty(STDIN_FILENO)) fprintf(stderr, "gpt2: reading the prompt from the terminal; end it with Ctrl-D\n");
    return gpt2_fileio_read_stream(stdin, "standard input", out, err, errsz);
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

bool cli_completion_json(StrBuf *b, const Gpt2Completion *c, const int32_t *prompt, size_t n_prompt, double load_ms,
                         const Gpt2Bytes *prompt_text, const int32_t *prompt_ids, size_t n_prompt_ids) {
    bool ok = gpt2_strbuf_append_char(b, '{');
    if (ok && prompt_text)
        ok = gpt2_strbuf_append_str(b, "\"prompt\":") &&
             gpt2_json_append_string(b, prompt_text->bytes, prompt_text->len) && gpt2_strbuf_append_char(b, ',');
    else if (ok && prompt_ids)
        ok = gpt2_strbuf_append_str(b, "\"prompt\":") && cli_append_ids(b, prompt_ids, n_prompt_ids) &&
             gpt2_strbuf_append_char(b, ',');
    ok = ok && gpt2_strbuf_append_str(b, "\"prompt_tokens\":") && cli_append_ids(b, prompt, n_prompt) &&
         gpt2_strbuf_append_str(b, ",\"completion_tokens\":") && cli_append_ids(b, c->tokens, c->n_tokens) &&
         gpt2_strbuf_append_str(b, ",\"completion\":") && gpt2_json_append_string(b, c->text, c->text_len) &&
         gpt2_strbuf_printf(b, ",\"finish_reason\":\"%s\"", gpt2_finish_name(c->finish)) &&
         gpt2_strbuf_printf(b,
                            ",\"timings\":{\"load_ms\":%.3f,\"prompt_tokens\":%zu,\"prompt_evaluated\":%zu,"
                            "\"prompt_ms\":%.3f,\"gen_tokens\":%zu,\"gen_ms\":%.3f}}",
                            load_ms, c->n_prompt_used, c->n_prompt_evaluated, c->prompt_ms, c->n_tokens, c->gen_ms);
    return ok;
}
