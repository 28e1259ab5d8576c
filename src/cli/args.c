/* cli_args.c - argv to CliOptions (see cli.h).
 *
 * Every value is parsed strictly (numparse.h): junk, overflow, NaN and
 * out-of-range values are usage errors, as are options that cannot go
 * together.  The one table below, `option_specs`, drives getopt and --help
 * alike, and the defaults --help shows are read from the CliOptions every
 * run starts with, so the help cannot drift from what is parsed.
 */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "numparse.h"

/* ---- the option table: getopt and --help both read it ------------------- */

enum {
    OPT_TEMP = 256,
    OPT_TOP_K,
    OPT_TOP_P,
    OPT_REPEAT_PENALTY,
    OPT_REPEAT_LAST_N,
    OPT_MIN_P,
    OPT_PRESENCE_PENALTY,
    OPT_FREQUENCY_PENALTY,
    OPT_NO_REPEAT_NGRAM,
    OPT_LOGIT_BIAS,
    OPT_LOGPROBS,
    OPT_SAMPLES,
    OPT_PROMPT_CACHE,
    OPT_PROMPT_CACHE_RO,
    OPT_IN_PREFIX,
    OPT_IN_SUFFIX,
    OPT_SEED,
    OPT_IGNORE_EOS,
    OPT_STOP,
    OPT_ECHO,
    OPT_JSON,
    OPT_BATCH,
    OPT_BATCH_SIZE,
    OPT_SCORE,
    OPT_PREPEND_EOS,
    OPT_TOKENIZE,
    OPT_DETOKENIZE,
    OPT_SPECIAL,
    OPT_IDS,
    OPT_INSPECT,
    OPT_TOP,
    OPT_LOGIT_LENS,
    OPT_ATTENTION_JSON,
    OPT_ATTENTION_MAP,
    OPT_HEADS,
    OPT_VERSION
};

/* One option: its getopt code (a letter for those with a short form), long
 * name, value name (NULL for a flag) and help text.  A help text may hold
 * newlines.  The default, for an option that has one, is not written here:
 * option_default() reads it from the CliOptions that cli_defaults() makes,
 * the same values every run starts from.  A `section` heads a group. */
typedef struct {
    const char *section;
    int code;
    const char *name;
    const char *value;
    const char *help;
} OptionSpec;

static const OptionSpec option_specs[] = {
    {"Model", 'm', "model", "FILE", "model file; make one with scripts/download-model.sh or gpt2-convert"},
    {NULL, 't', "threads", "N", "threads"},
    {"Prompt", 'p', "prompt", "TEXT", "the prompt"},
    {NULL, 'f', "file", "FILE",
     "read the prompt from FILE ('-' is standard input); with -p,\n"
     "the prompt is the file's text, a newline, then TEXT\n"
     "(with neither -p nor -f the prompt is read from standard input)"},
    {NULL, OPT_IDS, "ids", NULL, "the prompt is whitespace-separated token ids, not text"},
    {NULL, OPT_SPECIAL, "special", NULL,
     "\"<|endoftext|>\" in text is the end-of-text token, not plain text, and\n"
     "so are a fine-tune's added tokens (<|pad|>, ...) theirs;\n"
     "an empty prompt conditions on <|endoftext|>"},
    {"Generation", 'n', "n-predict", "N", "tokens to generate"},
    {NULL, OPT_TEMP, "temp", "T", "temperature; 0 (or below 0.0001) is greedy"},
    {NULL, OPT_TOP_K, "top-k", "K", "sample from the K likeliest tokens; 0 is off"},
    {NULL, OPT_TOP_P, "top-p", "P", "sample from the smallest set of probability >= P; 1 is off"},
    {NULL, OPT_REPEAT_PENALTY, "repeat-penalty", "R", "penalise recent tokens; 1 is off, 1.2 stops greedy loops"},
    {NULL, OPT_REPEAT_LAST_N, "repeat-last-n", "N", "tokens the penalty looks back over (at most the context)"},
    {NULL, OPT_PRESENCE_PENALTY, "presence-penalty", "P",
     "subtract P from the logit of every token already generated\n"
     "(OpenAI's; the prompt does not count); 0 is off"},
    {NULL, OPT_FREQUENCY_PENALTY, "frequency-penalty", "F",
     "subtract F times the count of each token already generated; 0 is off"},
    {NULL, OPT_NO_REPEAT_NGRAM, "no-repeat-ngram", "N",
     "never repeat an N-gram of the tokens in the context\n"
     "(Hugging Face's no_repeat_ngram_size); 0 is off"},
    {NULL, OPT_LOGIT_BIAS, "logit-bias", "ID=BIAS",
     "add BIAS (-1000 to 1000, or -inf to ban) to token ID's logit;\n"
     "repeatable"},
    {NULL, OPT_MIN_P, "min-p", "P", "drop tokens less likely than P times the likeliest; 0 is off"},
    {NULL, OPT_SEED, "seed", "S", "random seed"},
    {NULL, OPT_SAMPLES, "samples", "N",
     "N completions of the prompt, sample i with seed S+i; the prompt is\n"
     "evaluated once.  Text: each after a line \"=== sample I (seed S) ===\"\n"
     "and followed by a newline; --json: one line each, with \"index\" and \"seed\"\n"
     "(up to --batch-size run at once)"},
    {NULL, OPT_PROMPT_CACHE, "prompt-cache", "FILE",
     "keep the prompt's keys and values in FILE; a later run whose prompt\n"
     "starts with the same tokens evaluates only the rest (same output)"},
    {NULL, OPT_PROMPT_CACHE_RO, "prompt-cache-ro", NULL, "use --prompt-cache FILE but never write it"},
    {NULL, OPT_IGNORE_EOS, "ignore-eos", NULL, "go on past <|endoftext|> instead of stopping there"},
    {NULL, OPT_STOP, "stop", "STRING", "stop before STRING; repeatable"},
    {"Output", OPT_ECHO, "echo", NULL, "print the prompt before the continuation; with --json, add \"prompt\""},
    {NULL, OPT_JSON, "json", NULL, "print one JSON object instead of text"},
    {NULL, OPT_LOGPROBS, "logprobs", "K",
     "with --json: each token's log-probability and the K (0 to 20)\n"
     "likeliest tokens at its step, from the model's own distribution\n"
     "(before temperature, penalties and truncation); with --echo the\n"
     "prompt's too, with --score every position's"},
    {NULL, 'v', "verbose", NULL, "timings, speed and the seed on standard error"},
    {"Interactive", 'i', "interactive", NULL,
     "continue the prompt (if any), then append each line typed, with its\n"
     "newline, to the text and continue it (-n tokens, a stop string or end\n"
     "of text); only new tokens are evaluated.  Ctrl-C stops a continuation,\n"
     "at the prompt it exits (130); Ctrl-D exits.  Without a terminal, each\n"
     "line of standard input is a turn, and standard output gets it too"},
    {NULL, OPT_IN_PREFIX, "in-prefix", "TEXT", "with -i, text put before each typed line"},
    {NULL, OPT_IN_SUFFIX, "in-suffix", "TEXT", "with -i, text put after each typed line (printed)"},
    {"Batch", OPT_BATCH, "batch", "FILE",
     "JSON Lines ('-' is standard input), answered line by line as they\n"
     "come: {\"prompt\": TEXT or [token ids]} with optional\n"
     "\"n\", \"temp\", \"top_k\", \"top_p\", \"seed\", \"stop\", \"ignore_eos\",\n"
     "\"repeat_penalty\", \"repeat_last_n\", \"min_p\", \"presence_penalty\",\n"
     "\"frequency_penalty\", \"no_repeat_ngram\", \"logit_bias\" ({\"ID\": BIAS}),\n"
     "\"logprobs\";\n"
     "options above are the defaults"},
    {NULL, OPT_BATCH_SIZE, "batch-size", "N", "completions computed together"},
    {"Scoring and tokens", OPT_SCORE, "score", NULL, "print each token's id, text and natural-log probability"},
    {NULL, OPT_PREPEND_EOS, "prepend-eos", NULL, "with --score, also score the first token, after <|endoftext|>"},
    {NULL, OPT_TOKENIZE, "tokenize", NULL, "print the token ids of the text, separated by spaces"},
    {NULL, OPT_DETOKENIZE, "detokenize", NULL, "read token ids, write their bytes"},
    {"Inspection", OPT_INSPECT, "inspect", NULL,
     "show how the model reads the prompt: its tokens, embeddings,\n"
     "attention and next-token predictions (one text report that\n"
     "fits the terminal; with --json one JSON object)"},
    {NULL, OPT_TOP, "top", "K", "with --inspect, the K likeliest next tokens per position"},
    {NULL, OPT_LOGIT_LENS, "logit-lens", NULL,
     "with --inspect, the token each layer's residual stream\n"
     "predicts (final LayerNorm and head applied to it)"},
    {NULL, OPT_ATTENTION_JSON, "attention-json", NULL,
     "with --inspect --json, every attention weight:\n"
     "\"attention\": [layer][head][query][key]"},
    {NULL, OPT_ATTENTION_MAP, "attention-map", "FILE.svg",
     "with --inspect, draw the attention of the last 64 tokens\n"
     "as heatmaps, layers by heads, into one SVG file"},
    {NULL, OPT_HEADS, "heads", "LIST",
     "heads the map shows: comma-separated head numbers, 'all', or\n"
     "'mean' (one map per layer, averaged over its heads)"},
    {"", 'h', "help", NULL, "show this help"},
    {NULL, OPT_VERSION, "version", NULL, "show the version"},
};
#define N_OPTIONS (sizeof option_specs / sizeof *option_specs)

/* The settings every run starts from; --help shows these values. */
static void cli_defaults(CliOptions *o, const char *env_model) {
    memset(o, 0, sizeof *o);
    o->mode = MODE_GENERATE;
    o->model_path = env_model && *env_model ? env_model : CLI_DEFAULT_MODEL;
    o->params = gpt2_default_params();
    o->params.stops = o->stops;
    o->params.sampling.logit_bias = o->logit_bias;
    o->batch_size = CLI_DEFAULT_BATCH_SIZE;
    o->inspect_top = CLI_DEFAULT_INSPECT_TOP;
}

/* A real number as --help shows it: "1.0", "0.95". */
static const char *real_text(double v, char *buf, size_t n) {
    snprintf(buf, n, "%g", v);
    if (!strpbrk(buf, ".en")) snprintf(buf + strlen(buf), n - strlen(buf), ".0");
    return buf;
}

/* What --help shows as option code's default, written into buf when it is a
 * value; NULL for an option without one. */
static const char *option_default(int code, const CliOptions *d, char *buf, size_t n) {
    const Gpt2Sampling *s = &d->params.sampling;
    switch (code) {
    case 'm': return "$GPT2_MODEL, else " CLI_DEFAULT_MODEL;
    case 't': return "one per CPU of its affinity mask, within its cgroup's CPU quota";
    case 'n': snprintf(buf, n, "%u", (unsigned)d->params.n_predict); return buf;
    case OPT_TEMP: return real_text(s->temperature, buf, n);
    case OPT_TOP_K: snprintf(buf, n, "%u", (unsigned)s->top_k); return buf;
    case OPT_TOP_P: return real_text(s->top_p, buf, n);
    case OPT_REPEAT_PENALTY: return real_text(s->repeat_penalty, buf, n);
    case OPT_REPEAT_LAST_N: snprintf(buf, n, "%u", (unsigned)s->repeat_last_n); return buf;
    case OPT_MIN_P: return real_text(s->min_p, buf, n);
    case OPT_PRESENCE_PENALTY: return real_text(s->presence_penalty, buf, n);
    case OPT_FREQUENCY_PENALTY: return real_text(s->frequency_penalty, buf, n);
    case OPT_NO_REPEAT_NGRAM: snprintf(buf, n, "%u", (unsigned)s->no_repeat_ngram); return buf;
    case OPT_LOGIT_BIAS: return "none";
    case OPT_LOGPROBS: return "off";
    case OPT_SAMPLES: return "1";
    case OPT_IN_PREFIX:
    case OPT_IN_SUFFIX: return "none";
    case OPT_SEED: return "from the clock; -v prints it";
    case OPT_STOP: return "none";
    case OPT_BATCH_SIZE: snprintf(buf, n, "%u", (unsigned)d->batch_size); return buf;
    case OPT_TOP: snprintf(buf, n, "%u", (unsigned)d->inspect_top); return buf;
    case OPT_HEADS: return "all up to 144 heads, else mean";
    default: return NULL;
    }
}

/* Help texts wrap at this column; a default that does not fit on the
 * option's last line gets a line of its own. */
#define HELP_INDENT 26
#define HELP_WIDTH 100

bool cli_print_usage(FILE *f) {
    CliOptions d;
    cli_defaults(&d, NULL);
    fputs("usage: gpt2 [options]                 complete a prompt (-p, -f, or standard input)\n"
          "       gpt2 -i [-p TEXT] [options]    interactive: you and the model write a text in turns\n"
          "       gpt2 --batch FILE [options]    complete JSON Lines prompts, one JSON object per line\n"
          "       gpt2 --score [options]         log-probability of every token of a text\n"
          "       gpt2 --tokenize | --detokenize text to token ids and back\n"
          "       gpt2 --inspect [options]       how the model reads a prompt, step by step\n",
          f);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const OptionSpec *o = &option_specs[i];
        if (o->section) fprintf(f, "\n%s%s", o->section, *o->section ? ":\n" : "");
        char head[64], value[64];
        if (o->code < 256) snprintf(head, sizeof head, "-%c, --%s", o->code, o->name);
        else snprintf(head, sizeof head, "    --%s", o->name);
        if (o->value) snprintf(head + strlen(head), sizeof head - strlen(head), " %s", o->value);
        if (strlen(head) >= HELP_INDENT - 3)
            fprintf(f, "  %s\n%*s", head, HELP_INDENT, ""); /* too long to share a line */
        else fprintf(f, "  %-*s", HELP_INDENT - 2, head);
        const char *line = o->help, *nl;
        while ((nl = strchr(line, '\n'))) {
            fprintf(f, "%.*s\n%*s", (int)(nl - line), line, HELP_INDENT, "");
            line = nl + 1;
        }
        fputs(line, f);
        const char *dflt = option_default(o->code, &d, value, sizeof value);
        if (dflt && HELP_INDENT + strlen(line) + strlen(dflt) + 12 > HELP_WIDTH)
            fprintf(f, "\n%*s(default: %s)", HELP_INDENT, "", dflt);
        else if (dflt) fprintf(f, " (default: %s)", dflt);
        fputc('\n', f);
    }
    fputs("\nEnvironment: GPT2_MODEL is the model file when -m is not given; GPT2_KERNELS and\n"
          "GPT2_PREFETCH force a kernel set or a prefetch hint, for measurement (the results\n"
          "are the same; see man gpt2).\n",
          f);
    fputs("\nExit status: 0 success, 1 error, 2 usage error, 130 after Ctrl-C, 143 after SIGTERM.\n", f);
    return !ferror(f);
}

/* The name the user typed for option code c, for messages. */
static const char *option_name(int c, char buf[40]) {
    for (const OptionSpec *o = option_specs; o < option_specs + N_OPTIONS; o++) {
        if (o->code != c) continue;
        if (c < 256) snprintf(buf, 40, "-%c", c);
        else snprintf(buf, 40, "--%s", o->name);
        return buf;
    }
    return "?";
}

static ArgsResult usage_error(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ArgsResult usage_error(char *err, size_t errsz, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return ARGS_USAGE_ERROR;
}

/* The numeric settings: option code, batch-line key (NULL when a batch
 * line cannot set it), bounds, and the end of "must be ..." for messages. */
static const NumberRule number_rules[] = {
    {'n', "n", true, 0, 4294967295.0, "a whole number from 0 to 4294967295"},
    {OPT_TEMP, "temp", false, 0, 1e6, "a number from 0 to 1000000"},
    {OPT_TOP_K, "top_k", true, 0, 4294967295.0, "a whole number from 0 to 4294967295"},
    {OPT_TOP_P, "top_p", false, 0, 1, "a number from 0 to 1"},
    {OPT_REPEAT_PENALTY, "repeat_penalty", false, 0, 1e6, "a number above 0, at most 1000000"},
    {OPT_REPEAT_LAST_N, "repeat_last_n", true, 0, 4294967295.0, "a whole number from 0 to 4294967295"},
    {OPT_MIN_P, "min_p", false, 0, 1, "a number from 0 to 1"},
    {OPT_PRESENCE_PENALTY, "presence_penalty", false, -2, 2, "a number from -2 to 2"},
    {OPT_FREQUENCY_PENALTY, "frequency_penalty", false, -2, 2, "a number from -2 to 2"},
    {OPT_LOGPROBS, "logprobs", true, 0, GPT2_MAX_TOP_LOGPROBS, "a whole number from 0 to 20"},
    {OPT_NO_REPEAT_NGRAM, "no_repeat_ngram", true, 0, 4294967295.0, "a whole number from 0 to 4294967295"},
    {'t', NULL, true, 1, 1024, "a whole number from 1 to 1024"},
    {OPT_SAMPLES, NULL, true, 1, CLI_MAX_SAMPLES, "a whole number from 1 to 1000"},
    {OPT_BATCH_SIZE, NULL, true, 1, 256, "a whole number from 1 to 256"},
    {OPT_TOP, NULL, true, 1, 64, "a whole number from 1 to 64"},
};

const NumberRule *cli_number_rule(const char *key) {
    for (size_t i = 0; i < sizeof number_rules / sizeof *number_rules; i++)
        if (number_rules[i].key && strcmp(number_rules[i].key, key) == 0) return &number_rules[i];
    return NULL;
}

static const NumberRule *rule_for_code(int code) {
    for (size_t i = 0; i < sizeof number_rules / sizeof *number_rules; i++)
        if (number_rules[i].code == code) return &number_rules[i];
    return NULL;
}

bool cli_number_fits(const NumberRule *r, double v) {
    if (!(v >= r->lo && v <= r->hi)) return false; /* also refuses NaN */
    if (r->integer && v != floor(v)) return false;
    return r->code != OPT_REPEAT_PENALTY || v > 0; /* a zero penalty would divide by zero */
}

void cli_apply_number(const NumberRule *r, double v, Gpt2Params *p) {
    switch (r->code) {
    case 'n': p->n_predict = (uint32_t)v; break;
    case OPT_TEMP: p->sampling.temperature = (float)v; break;
    case OPT_TOP_K: p->sampling.top_k = (uint32_t)v; break;
    case OPT_TOP_P: p->sampling.top_p = (float)v; break;
    case OPT_REPEAT_PENALTY: p->sampling.repeat_penalty = (float)v; break;
    case OPT_REPEAT_LAST_N: p->sampling.repeat_last_n = (uint32_t)v; break;
    case OPT_MIN_P: p->sampling.min_p = (float)v; break;
    case OPT_PRESENCE_PENALTY: p->sampling.presence_penalty = (float)v; break;
    case OPT_FREQUENCY_PENALTY: p->sampling.frequency_penalty = (float)v; break;
    case OPT_NO_REPEAT_NGRAM: p->sampling.no_repeat_ngram = (uint32_t)v; break;
    case OPT_LOGPROBS:
        p->logprobs = true;
        p->top_logprobs = (uint32_t)v;
        break;
    default: break; /* not a generation setting */
    }
}

static bool parse_bias_value(const char *text, float *bias) {
    double v;
    if (strcmp(text, "-inf") == 0) {
        *bias = -INFINITY;
        return true;
    }
    if (!gpt2_parse_double(text, -1000, 1000, &v)) return false;
    *bias = (float)v;
    return true;
}

bool cli_parse_logit_bias(const char *text, Gpt2LogitBias *out) {
    const char *eq = strchr(text, '=');
    char id_text[24];
    int64_t id;
    if (!eq || (size_t)(eq - text) >= sizeof id_text) return false;
    memcpy(id_text, text, (size_t)(eq - text));
    id_text[eq - text] = '\0';
    if (!gpt2_parse_int(id_text, 0, INT32_MAX, &id) || !parse_bias_value(eq + 1, &out->bias)) return false;
    out->id = (int32_t)id;
    return true;
}

/* Parses the value of numeric option `code` into o; false with the
 * message in err. */
static bool number_option(int code, const char *arg, CliOptions *o, char *err, size_t errsz) {
    char name[40];
    const NumberRule *r = rule_for_code(code);
    double v = 0;
    bool ok;
    if (r->integer) {
        int64_t i;
        ok = gpt2_parse_int(arg, (int64_t)r->lo, (int64_t)r->hi, &i);
        v = (double)i;
    } else {
        ok = gpt2_parse_double(arg, -INFINITY, INFINITY, &v);
    }
    if (!ok || !cli_number_fits(r, v)) {
        usage_error(err, errsz, "%s must be %s, not '%s'", option_name(code, name), r->what, arg);
        return false;
    }
    if (code == 't') o->n_threads = (int)v;
    else if (code == OPT_BATCH_SIZE) o->batch_size = (uint32_t)v;
    else if (code == OPT_TOP) o->inspect_top = (uint32_t)v;
    else if (code == OPT_SAMPLES) o->samples = (uint32_t)v;
    else cli_apply_number(r, v, &o->params);
    return true;
}

/* --heads: "all", "mean", or head numbers such as "0,5,11". */
static bool parse_heads(const char *arg, CliOptions *o) {
    o->n_heads = 0;
    if (strcmp(arg, "all") == 0) return (o->heads = HEADS_ALL), true;
    if (strcmp(arg, "mean") == 0) return (o->heads = HEADS_MEAN), true;
    o->heads = HEADS_LIST;
    char item[32];
    for (const char *p = arg;;) {
        size_t len = strcspn(p, ",");
        int64_t h;
        if (len == 0 || len >= sizeof item || o->n_heads == CLI_MAX_HEADS) return false;
        memcpy(item, p, len);
        item[len] = 0;
        if (!gpt2_parse_int(item, 0, 9999, &h)) return false;
        o->head_list[o->n_heads++] = (uint32_t)h;
        if (!p[len]) return true;
        p += len + 1;
    }
}

static ArgsResult set_mode(CliOptions *o, CliMode mode, int code, int *mode_code, char *err, size_t errsz) {
    char a[40], b[40];
    if (*mode_code && *mode_code != code)
        return usage_error(err, errsz, "%s and %s cannot be used together", option_name(*mode_code, a),
                           option_name(code, b));
    o->mode = mode;
    *mode_code = code;
    return ARGS_RUN;
}

/* Options that mean nothing in the chosen mode are refused rather than
 * silently ignored, so a mistaken command line never half-works. */
static ArgsResult check_combinations(const CliOptions *o, int mode_code, char *err, size_t errsz) {
    char m[40];
    const char *mode = mode_code ? option_name(mode_code, m) : "generation";
    if (o->mode == MODE_BATCH && (o->prompt || o->prompt_file || o->ids))
        return usage_error(err, errsz, "--batch reads its prompts from its file; -p, -f and --ids do not apply");
    if (o->mode == MODE_TOKENIZE && o->ids)
        return usage_error(err, errsz, "--tokenize reads text; --ids does not apply");
    if (o->json && (o->mode == MODE_TOKENIZE || o->mode == MODE_DETOKENIZE))
        return usage_error(err, errsz, "--json does not apply to %s", mode);
    if (o->echo && o->mode != MODE_GENERATE) return usage_error(err, errsz, "--echo does not apply to %s", mode);
    if (o->interactive) {
        if (o->mode != MODE_GENERATE) return usage_error(err, errsz, "-i does not apply to %s", mode);
        if (o->json || o->samples || o->params.logprobs || o->echo)
            return usage_error(err, errsz,
                               "-i writes text as it comes; --json, --samples, --logprobs and --echo "
                               "do not apply");
        if (o->prompt_file && strcmp(o->prompt_file, "-") == 0)
            return usage_error(err, errsz, "with -i, standard input is the typed lines, not the prompt");
    }
    if ((o->in_prefix || o->in_suffix) && !o->interactive)
        return usage_error(err, errsz, "--in-prefix and --in-suffix need -i");
    if (o->samples && o->mode != MODE_GENERATE)
        return usage_error(err, errsz, "--samples does not apply to %s%s", mode,
                           o->mode == MODE_BATCH ? " (give a line \"samples\")" : "");
    if (o->prompt_cache && o->mode != MODE_GENERATE)
        return usage_error(err, errsz, "--prompt-cache does not apply to %s", mode);
    if (o->prompt_cache_ro && !o->prompt_cache)
        return usage_error(err, errsz, "--prompt-cache-ro needs --prompt-cache");
    if (o->params.logprobs && o->mode != MODE_BATCH && !o->json)
        return usage_error(err, errsz, "--logprobs needs --json");
    if (o->params.logprobs && o->mode != MODE_BATCH && o->mode != MODE_GENERATE && o->mode != MODE_SCORE)
        return usage_error(err, errsz, "--logprobs does not apply to %s", mode);
    if (o->prepend_eos && o->mode != MODE_SCORE) return usage_error(err, errsz, "--prepend-eos needs --score");
    if (o->mode != MODE_INSPECT && (o->inspect_given || o->attention_map))
        return usage_error(err, errsz,
                           "--top, --logit-lens, --attention-json, --attention-map and --heads need --inspect");
    if (o->attention_json && !o->json) return usage_error(err, errsz, "--attention-json needs --json");
    if (o->heads_given && !o->attention_map) return usage_error(err, errsz, "--heads needs --attention-map");
    if (o->prompt_file && o->batch_file && strcmp(o->prompt_file, "-") == 0 && strcmp(o->batch_file, "-") == 0)
        return usage_error(err, errsz, "standard input cannot be both the prompt and the batch");
    return ARGS_RUN;
}

ArgsResult cli_parse_args(int argc, char **argv, const char *env_model, CliOptions *o, char *err, size_t errsz) {
    cli_defaults(o, env_model);
    struct option options[N_OPTIONS + 1];
    for (size_t i = 0; i < N_OPTIONS; i++)
        options[i] = (struct option){option_specs[i].name, option_specs[i].value ? required_argument : no_argument,
                                     NULL, option_specs[i].code};
    options[N_OPTIONS] = (struct option){NULL, 0, NULL, 0};
    int mode_code = 0;
    char name[40];
    opterr = 0;
    optind = 0; /* 0 re-initialises GNU getopt, so tests may call this more than once */
    int c;
    while ((c = getopt_long(argc, argv, ":m:t:p:f:n:vih", options, NULL)) != -1) {
        ArgsResult r = ARGS_RUN;
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'f': o->prompt_file = optarg; break;
        case 'v': o->verbose = true; break;
        case 'i': o->interactive = true; break;
        case OPT_IN_PREFIX: o->in_prefix = optarg; break;
        case OPT_IN_SUFFIX: o->in_suffix = optarg; break;
        case 'h': return ARGS_HELP;
        case OPT_VERSION: return ARGS_VERSION;
        case OPT_IDS: o->ids = true; break;
        case OPT_SPECIAL: o->special = true; break;
        case OPT_IGNORE_EOS: o->params.ignore_eos = true; break;
        case OPT_ECHO: o->echo = true; break;
        case OPT_JSON: o->json = true; break;
        case OPT_PREPEND_EOS: o->prepend_eos = true; break;
        case OPT_INSPECT: r = set_mode(o, MODE_INSPECT, c, &mode_code, err, errsz); break;
        case OPT_LOGIT_LENS: o->logit_lens = o->inspect_given = true; break;
        case OPT_ATTENTION_JSON: o->attention_json = o->inspect_given = true; break;
        case OPT_ATTENTION_MAP:
            if (!*optarg) return usage_error(err, errsz, "--attention-map needs a file name");
            o->attention_map = optarg;
            break;
        case OPT_HEADS:
            if (!parse_heads(optarg, o))
                return usage_error(err, errsz,
                                   "--heads must be 'all', 'mean' or up to %d comma-separated head numbers, not '%s'",
                                   CLI_MAX_HEADS, optarg);
            o->heads_given = true;
            break;
        case OPT_SEED:
            if (!gpt2_parse_u64(optarg, &o->params.sampling.seed))
                return usage_error(err, errsz, "--seed must be a whole number from 0 to 18446744073709551615, not '%s'",
                                   optarg);
            o->seed_given = true;
            break;
        case OPT_STOP:
            if (!*optarg) return usage_error(err, errsz, "--stop needs a non-empty string");
            if (o->params.n_stops == CLI_MAX_STOPS)
                return usage_error(err, errsz, "at most %d --stop strings", CLI_MAX_STOPS);
            o->stops[o->params.n_stops++] = (Gpt2Bytes){optarg, strlen(optarg)};
            break;
        case OPT_LOGIT_BIAS:
            if (o->params.sampling.n_logit_bias == CLI_MAX_LOGIT_BIAS)
                return usage_error(err, errsz, "at most %d --logit-bias settings", CLI_MAX_LOGIT_BIAS);
            if (!cli_parse_logit_bias(optarg, &o->logit_bias[o->params.sampling.n_logit_bias]))
                return usage_error(err, errsz, "--logit-bias must be %s, not '%s'", CLI_LOGIT_BIAS_RULE, optarg);
            o->params.sampling.n_logit_bias++;
            break;
        case OPT_PROMPT_CACHE:
            if (!*optarg) return usage_error(err, errsz, "--prompt-cache needs a file name");
            o->prompt_cache = optarg;
            break;
        case OPT_PROMPT_CACHE_RO: o->prompt_cache_ro = true; break;
        case OPT_BATCH:
            o->batch_file = optarg;
            r = set_mode(o, MODE_BATCH, c, &mode_code, err, errsz);
            break;
        case OPT_SCORE: r = set_mode(o, MODE_SCORE, c, &mode_code, err, errsz); break;
        case OPT_TOKENIZE: r = set_mode(o, MODE_TOKENIZE, c, &mode_code, err, errsz); break;
        case OPT_DETOKENIZE: r = set_mode(o, MODE_DETOKENIZE, c, &mode_code, err, errsz); break;
        case 'n':
        case 't':
        case OPT_TEMP:
        case OPT_TOP_K:
        case OPT_TOP_P:
        case OPT_REPEAT_PENALTY:
        case OPT_REPEAT_LAST_N:
        case OPT_MIN_P:
        case OPT_PRESENCE_PENALTY:
        case OPT_FREQUENCY_PENALTY:
        case OPT_NO_REPEAT_NGRAM:
        case OPT_LOGPROBS:
        case OPT_SAMPLES:
        case OPT_BATCH_SIZE:
        case OPT_TOP:
            if (c == OPT_TOP) o->inspect_given = true;
            if (!number_option(c, optarg, o, err, errsz)) return ARGS_USAGE_ERROR;
            break;
        case ':':
            return usage_error(err, errsz, "%s needs a value", optopt ? option_name(optopt, name) : argv[optind - 1]);
        default:
            if (optopt && optopt < 256)
                return usage_error(err, errsz, "unknown option '-%c' (see gpt2 --help)", optopt);
            return usage_error(err, errsz, "unknown option '%s' (see gpt2 --help)", argv[optind - 1]);
        }
        if (r != ARGS_RUN) return r;
    }
    if (optind < argc)
        return usage_error(err, errsz, "unexpected argument '%s' (give a prompt with -p TEXT or -f FILE)",
                           argv[optind]);
    if (!*o->model_path) return usage_error(err, errsz, "-m needs a file name");
    return check_combinations(o, mode_code, err, errsz);
}
