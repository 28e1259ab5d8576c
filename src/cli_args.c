/* cli_args.c - argv to CliOptions (see cli.h).
 *
 * Every value is parsed strictly (numparse.h): junk, overflow, NaN and
 * out-of-range values are usage errors, as are options that cannot go
 * together.  The one table below, `options`, drives getopt and --help alike,
 * so the help cannot drift from what is parsed.
 */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "numparse.h"

const char cli_usage[] =
    "usage: gpt2 [options]                 complete a prompt (-p, -f, or standard input)\n"
    "       gpt2 --batch FILE [options]    complete JSON Lines prompts, one JSON object per line\n"
    "       gpt2 --score [options]         log-probability of every token of a text\n"
    "       gpt2 --tokenize | --detokenize text to token ids and back\n"
    "\n"
    "Model:\n"
    "  -m, --model FILE        model file (default: $GPT2_MODEL, else " CLI_DEFAULT_MODEL ");\n"
    "                          make one with scripts/download-model.sh or gpt2-convert\n"
    "  -t, --threads N         threads (default: one per CPU)\n"
    "\n"
    "Prompt:\n"
    "  -p, --prompt TEXT       the prompt\n"
    "  -f, --file FILE         read the prompt from FILE ('-' is standard input); with -p,\n"
    "                          the prompt is the file's text, a newline, then TEXT\n"
    "                          (with neither -p nor -f the prompt is read from standard input)\n"
    "      --ids               the prompt is whitespace-separated token ids, not text\n"
    "      --special           \"<|endoftext|>\" in text is the end-of-text token (default: plain text)\n"
    "                          an empty prompt conditions on <|endoftext|>\n"
    "\n"
    "Generation:\n"
    "  -n, --n-predict N       tokens to generate (default: 50)\n"
    "      --temp T            temperature; 0 is greedy (default: 1.0)\n"
    "      --top-k K           sample from the K likeliest tokens; 0 is off (default: 40)\n"
    "      --top-p P           sample from the smallest set of probability >= P (default: 1.0, off)\n"
    "      --repeat-penalty R  penalise recent tokens; 1 is off, 1.2 stops greedy loops (default: 1.0)\n"
    "      --repeat-last-n N   tokens the penalty looks back over (default: 64)\n"
    "      --seed S            random seed (default: from the clock; -v prints it)\n"
    "      --ignore-eos        go on past <|endoftext|> (default: stop there)\n"
    "      --stop STRING       stop before STRING; repeatable (default: none)\n"
    "\n"
    "Output:\n"
    "      --echo              print the prompt before the continuation\n"
    "      --json              print one JSON object instead of text\n"
    "  -v, --verbose           timings, speed and the seed on standard error\n"
    "\n"
    "Batch:\n"
    "      --batch FILE        JSON Lines ('-' is standard input): {\"prompt\": ...} with optional\n"
    "                          \"n\", \"temp\", \"top_k\", \"top_p\", \"seed\", \"stop\", \"ignore_eos\",\n"
    "                          \"repeat_penalty\", \"repeat_last_n\"; options above are the defaults\n"
    "      --batch-size N      completions computed together (default: 16)\n"
    "\n"
    "Scoring and tokens:\n"
    "      --score             print each token's id, text and natural-log probability\n"
    "      --prepend-eos       with --score, also score the first token, after <|endoftext|>\n"
    "      --tokenize          print the token ids of the text, separated by spaces\n"
    "      --detokenize        read token ids, write their bytes\n"
    "\n"
    "  -h, --help              show this help\n"
    "      --version           show the version\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error, 130 after Ctrl-C, 143 after SIGTERM.\n";

enum {
    OPT_TEMP = 256, OPT_TOP_K, OPT_TOP_P, OPT_REPEAT_PENALTY, OPT_REPEAT_LAST_N, OPT_SEED, OPT_IGNORE_EOS,
    OPT_STOP, OPT_ECHO, OPT_JSON, OPT_BATCH, OPT_BATCH_SIZE, OPT_SCORE, OPT_PREPEND_EOS, OPT_TOKENIZE,
    OPT_DETOKENIZE, OPT_SPECIAL, OPT_IDS, OPT_VERSION
};

static const struct option options[] = {
    {"model", required_argument, NULL, 'm'},
    {"threads", required_argument, NULL, 't'},
    {"prompt", required_argument, NULL, 'p'},
    {"file", required_argument, NULL, 'f'},
    {"ids", no_argument, NULL, OPT_IDS},
    {"special", no_argument, NULL, OPT_SPECIAL},
    {"n-predict", required_argument, NULL, 'n'},
    {"temp", required_argument, NULL, OPT_TEMP},
    {"top-k", required_argument, NULL, OPT_TOP_K},
    {"top-p", required_argument, NULL, OPT_TOP_P},
    {"repeat-penalty", required_argument, NULL, OPT_REPEAT_PENALTY},
    {"repeat-last-n", required_argument, NULL, OPT_REPEAT_LAST_N},
    {"seed", required_argument, NULL, OPT_SEED},
    {"ignore-eos", no_argument, NULL, OPT_IGNORE_EOS},
    {"stop", required_argument, NULL, OPT_STOP},
    {"echo", no_argument, NULL, OPT_ECHO},
    {"json", no_argument, NULL, OPT_JSON},
    {"verbose", no_argument, NULL, 'v'},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
    {"score", no_argument, NULL, OPT_SCORE},
    {"prepend-eos", no_argument, NULL, OPT_PREPEND_EOS},
    {"tokenize", no_argument, NULL, OPT_TOKENIZE},
    {"detokenize", no_argument, NULL, OPT_DETOKENIZE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* The name the user typed for option code c, for messages. */
static const char *option_name(int c, char buf[40]) {
    for (const struct option *o = options; o->name; o++) {
        if (o->val != c) continue;
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
    {'t', NULL, true, 1, 1024, "a whole number from 1 to 1024"},
    {OPT_BATCH_SIZE, NULL, true, 1, 256, "a whole number from 1 to 256"},
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
    default: break; /* not a generation setting */
    }
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
        ok = parse_int(arg, (int64_t)r->lo, (int64_t)r->hi, &i);
        v = (double)i;
    } else {
        ok = parse_double(arg, -INFINITY, INFINITY, &v);
    }
    if (!ok || !cli_number_fits(r, v)) {
        usage_error(err, errsz, "%s must be %s, not '%s'", option_name(code, name), r->what, arg);
        return false;
    }
    if (code == 't') o->n_threads = (int)v;
    else if (code == OPT_BATCH_SIZE) o->batch_size = (uint32_t)v;
    else cli_apply_number(r, v, &o->params);
    return true;
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
    if (o->mode == MODE_TOKENIZE && o->ids) return usage_error(err, errsz, "--tokenize reads text; --ids does not apply");
    if (o->json && (o->mode == MODE_TOKENIZE || o->mode == MODE_DETOKENIZE))
        return usage_error(err, errsz, "--json does not apply to %s", mode);
    if (o->echo && o->mode != MODE_GENERATE) return usage_error(err, errsz, "--echo does not apply to %s", mode);
    if (o->echo && o->json) return usage_error(err, errsz, "--echo does not apply with --json (see prompt_tokens)");
    if (o->prepend_eos && o->mode != MODE_SCORE) return usage_error(err, errsz, "--prepend-eos needs --score");
    if (o->prompt_file && o->batch_file && strcmp(o->prompt_file, "-") == 0 && strcmp(o->batch_file, "-") == 0)
        return usage_error(err, errsz, "standard input cannot be both the prompt and the batch");
    return ARGS_RUN;
}

ArgsResult cli_parse_args(int argc, char **argv, const char *env_model, CliOptions *o, char *err, size_t errsz) {
    memset(o, 0, sizeof *o);
    o->mode = MODE_GENERATE;
    o->model_path = env_model && *env_model ? env_model : CLI_DEFAULT_MODEL;
    o->params = gpt2_default_params();
    o->params.stops = o->stops;
    o->batch_size = 16;
    int mode_code = 0;
    char name[40];
    opterr = 0;
    optind = 0; /* 0 re-initialises GNU getopt, so tests may call this more than once */
    int c;
    while ((c = getopt_long(argc, argv, ":m:t:p:f:n:vh", options, NULL)) != -1) {
        ArgsResult r = ARGS_RUN;
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case 'p': o->prompt = optarg; break;
        case 'f': o->prompt_file = optarg; break;
        case 'v': o->verbose = true; break;
        case 'h': return ARGS_HELP;
        case OPT_VERSION: return ARGS_VERSION;
        case OPT_IDS: o->ids = true; break;
        case OPT_SPECIAL: o->special = true; break;
        case OPT_IGNORE_EOS: o->params.ignore_eos = true; break;
        case OPT_ECHO: o->echo = true; break;
        case OPT_JSON: o->json = true; break;
        case OPT_PREPEND_EOS: o->prepend_eos = true; break;
        case OPT_SEED:
            if (!parse_u64(optarg, &o->params.sampling.seed))
                return usage_error(err, errsz, "--seed must be a whole number from 0 to 18446744073709551615, not '%s'",
                                   optarg);
            o->seed_given = true;
            break;
        case OPT_STOP:
            if (!*optarg) return usage_error(err, errsz, "--stop needs a non-empty string");
            if (o->params.n_stops == CLI_MAX_STOPS) return usage_error(err, errsz, "at most %d --stop strings", CLI_MAX_STOPS);
            o->stops[o->params.n_stops++] = (Gpt2Bytes){optarg, strlen(optarg)};
            break;
        case OPT_BATCH:
            o->batch_file = optarg;
            r = set_mode(o, MODE_BATCH, c, &mode_code, err, errsz);
            break;
        case OPT_SCORE: r = set_mode(o, MODE_SCORE, c, &mode_code, err, errsz); break;
        case OPT_TOKENIZE: r = set_mode(o, MODE_TOKENIZE, c, &mode_code, err, errsz); break;
        case OPT_DETOKENIZE: r = set_mode(o, MODE_DETOKENIZE, c, &mode_code, err, errsz); break;
        case 'n': case 't': case OPT_TEMP: case OPT_TOP_K: case OPT_TOP_P:
        case OPT_REPEAT_PENALTY: case OPT_REPEAT_LAST_N: case OPT_BATCH_SIZE:
            if (!number_option(c, optarg, o, err, errsz)) return ARGS_USAGE_ERROR;
            break;
        case ':':
            return usage_error(err, errsz, "%s needs a value",
                               optopt ? option_name(optopt, name) : argv[optind - 1]);
        default:
            if (optopt && optopt < 256) return usage_error(err, errsz, "unknown option '-%c' (see gpt2 --help)", optopt);
            return usage_error(err, errsz, "unknown option '%s' (see gpt2 --help)", argv[optind - 1]);
        }
        if (r != ARGS_RUN) return r;
    }
    if (optind < argc)
        return usage_error(err, errsz, "unexpected argument '%s' (give a prompt with -p TEXT or -f FILE)", argv[optind]);
    if (!*o->model_path) return usage_error(err, errsz, "-m needs a file name");
    return check_combinations(o, mode_code, err, errsz);
}
