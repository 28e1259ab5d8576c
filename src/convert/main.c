/* convert_main.c - gpt2-convert: the command line around convert.h. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert.h"
#include "model_writer.h"
#include "numparse.h"

static const char usage[] =
    "usage: gpt2-convert SOURCE OUT_FILE [--dtype TYPE] [--tokenizer DIR] [-q]\n"
    "       gpt2-convert --random SHAPE OUT_FILE [--dtype TYPE] [--seed N] [--tokenizer DIR] [-q]\n"
    "\n"
    "Converts a GPT-2 checkpoint into one gpt2 model file, or writes a model with\n"
    "random weights.  SOURCE is a Hugging Face folder (config.json, vocab.json,\n"
    "merges.txt and one of model.safetensors, model.safetensors.index.json with\n"
    "its shards, pytorch_model.bin or pytorch_model.bin.index.json with its\n"
    "shards), or one of those files, with config.json, vocab.json and merges.txt\n"
    "beside it (tokenizer.json may stand for vocab.json and merges.txt), or a\n"
    "GGUF file of architecture gpt2 (F32, F16, BF16 or Q8_0, which carries its\n"
    "own hyperparameters and tokenizer; with --dtype q8_0 its Q8_0 blocks are\n"
    "carried over unchanged).  Weights may be F32, F16 or BF16;\n"
    "PyTorch files are read by a restricted unpickler that never runs anything.\n"
    "OUT_FILE is written under a temporary name and replaces an existing file\n"
    "only once the conversion has succeeded.\n"
    "\n"
    "  --dtype TYPE      type of the weight matrices: f32 (default), f16, bf16 or\n"
    "                    q8_0; biases, LayerNorms and wpe stay f32, and q8_0 falls\n"
    "                    back to f16 for a matrix whose rows are not whole blocks\n"
    "                    of 32 values\n"
    "  --tokenizer DIR   take vocab.json and merges.txt from DIR instead of SOURCE\n"
    "  --random SHAPE    random weights of SHAPE: 124M, 355M, 774M, 1558M, distil,\n"
    "                    or LAYERSxHEADSxEMBD[xCTX] (n_ctx 1024 by default); the\n"
    "                    vocabulary is a synthetic one of 50257 tokens unless\n"
    "                    --tokenizer is given\n"
    "  --seed N          seed for --random (default 1)\n"
    "  -q, --quiet       no progress output (progress goes to standard error)\n"
    "  -h, --help        show this help\n"
    "  --version         show the version\n"
    "\n"
    "Exit status: 0 on success, 1 when the input is refused or the output cannot\n"
    "be written (the last line on standard error says why), 2 for a usage error.\n";

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "gpt2-convert: %s%s%s (see gpt2-convert --help)\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

/* ---- no half-written file on Ctrl-C -------------------------------------- */

/* gpt2_model_write writes a temporary file it creates exclusively and
 * renames it into place.  On SIGINT, SIGTERM or SIGHUP that file, and only
 * that file, is removed before the signal takes its default course; unlink
 * is async-signal-safe. */
static void remove_partial(int sig) {
    if (gpt2_model_writer_partial_live) unlink(gpt2_model_writer_partial);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void clean_up_on_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = remove_partial;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) sigaction(sigs[i], &sa, NULL);
}

/* OUT_FILE's folder must exist and be writable, and OUT_FILE must not be a
 * folder: said now, not after minutes of conversion. */
static bool output_writable(const char *out, char *err, size_t errsz) {
    char dir[4096];
    const char *slash = strrchr(out, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == out ? 1 : (int)(slash - out), out);
    struct stat sb;
    if (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "%s: is a folder; give the path of the model file to write", out);
        return false;
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, errsz, "cannot write %s: folder %.400s does not exist", out, dir);
        return false;
    }
    if (access(dir, W_OK) != 0) {
        snprintf(err, errsz, "cannot write %s: folder %.400s is not writable", out, dir);
        return false;
    }
    return true;
}

static int refuse(const char *err) {
    fprintf(stderr, "gpt2-convert: %s\n", err);
    return 1;
}

int main(int argc, char **argv) {
    enum { OPT_TOKENIZER = 256, OPT_RANDOM, OPT_SEED, OPT_VERSION };
    static const struct option longs[] = {
        {"dtype", required_argument, NULL, 'd'},
        {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"random", required_argument, NULL, OPT_RANDOM},
        {"seed", required_argument, NULL, OPT_SEED},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    DType dtype = DTYPE_F32;
    const char *tokenizer_dir = NULL, *random_shape = NULL;
    uint64_t seed = 1;
    bool quiet = false;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":d:qh", longs, NULL)) != -1) {
        switch (opt) {
        case 'd':
            if (!gpt2_dtype_from_name(optarg, &dtype))
                return usage_error("--dtype must be f32, f16, bf16 or q8_0", optarg);
            break;
        case OPT_TOKENIZER: tokenizer_dir = optarg; break;
        case OPT_RANDOM: random_shape = optarg; break;
        case OPT_SEED:
            if (!gpt2_parse_u64(optarg, &seed)) return usage_error("--seed needs a non-negative integer", optarg);
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_VERSION: printf("gpt2-convert %s\n", GPT2_VERSION); return 0;
        case ':': return usage_error("option needs a value", argv[optind - 1]);
        default: {
            /* A short option names itself in optopt; a long one only in argv. */
            char shown[3] = {'-', (char)optopt, '\0'};
            return usage_error("unknown option", optopt ? shown : argv[optind - 1]);
        }
        }
    }
    int positional = argc - optind;
    char err[1024];
    FILE *progress = quiet ? NULL : stderr;
    if (random_shape) {
        if (positional != 1) return usage_error("--random takes one OUT_FILE", NULL);
        ModelConfig c = {.dtype = dtype};
        if (!gpt2_model_shape_from_name(random_shape, &c)) return usage_error("unknown shape", random_shape);
        const char *out = argv[optind];
        if (!output_writable(out, err, sizeof err)) return refuse(err);
        clean_up_on_signals();
        if (!gpt2_convert_random(&c, seed, tokenizer_dir, out, progress, err, sizeof err)) return refuse(err);
        return 0;
    }
    if (positional != 2) return usage_error(positional < 2 ? "missing SOURCE or OUT_FILE" : "too many arguments", NULL);
    ConvertOptions o = {argv[optind], tokenizer_dir, argv[optind + 1], dtype, progress};
    if (!output_writable(o.out_path, err, sizeof err)) return refuse(err);
    clean_up_on_signals();
    if (!gpt2_convert_hf(&o, err, sizeof err)) return refuse(err);
    if (!quiet) fprintf(stderr, "wrote %s\n", o.out_path);
    return 0;
}
