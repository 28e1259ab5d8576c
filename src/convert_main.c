/* convert_main.c - gpt2-convert: the command line around convert.h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "numparse.h"

static const char usage[] =
    "usage: gpt2-convert HF_DIR OUT_FILE [--dtype TYPE] [--tokenizer DIR] [-q]\n"
    "       gpt2-convert --random SHAPE OUT_FILE [--dtype TYPE] [--seed N] [--tokenizer DIR] [-q]\n"
    "\n"
    "Converts a Hugging Face GPT-2 folder (config.json, model.safetensors, vocab.json,\n"
    "merges.txt) into one gpt2 model file, or writes a model with random weights.\n"
    "\n"
    "  --dtype TYPE      weight type: f32 (default), f16, bf16 or q8_0\n"
    "  --tokenizer DIR   take vocab.json and merges.txt from DIR instead of HF_DIR\n"
    "  --random SHAPE    random weights of SHAPE: 124M, 355M, 774M, 1558M, distil,\n"
    "                    or LAYERSxHEADSxEMBD[xCTX]; the vocabulary is synthetic\n"
    "                    unless --tokenizer is given\n"
    "  --seed N          seed for --random (default 1)\n"
    "  -q, --quiet       no progress output\n"
    "  -h, --help        show this help\n"
    "  --version         show the version\n";

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "gpt2-convert: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    fprintf(stderr, "Try 'gpt2-convert --help'.\n");
    return 2;
}

int main(int argc, char **argv) {
    enum { OPT_TOKENIZER = 256, OPT_RANDOM, OPT_SEED, OPT_VERSION };
    static const struct option longs[] = {
        {"dtype", required_argument, NULL, 'd'},    {"tokenizer", required_argument, NULL, OPT_TOKENIZER},
        {"random", required_argument, NULL, OPT_RANDOM}, {"seed", required_argument, NULL, OPT_SEED},
        {"quiet", no_argument, NULL, 'q'},          {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION}, {NULL, 0, NULL, 0},
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
            if (!dtype_from_name(optarg, &dtype)) return usage_error("--dtype must be f32, f16, bf16 or q8_0", optarg);
            break;
        case OPT_TOKENIZER: tokenizer_dir = optarg; break;
        case OPT_RANDOM: random_shape = optarg; break;
        case OPT_SEED:
            if (!parse_u64(optarg, &seed)) return usage_error("--seed needs a non-negative integer", optarg);
            break;
        case 'q': quiet = true; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_VERSION: printf("gpt2-convert %s\n", GPT2_VERSION); return 0;
        case ':': return usage_error("option needs a value", argv[optind - 1]);
        default: return usage_error("unknown option", argv[optind - 1]);
        }
    }
    int positional = argc - optind;
    char err[1024];
    FILE *progress = quiet ? NULL : stderr;
    if (random_shape) {
        if (positional != 1) return usage_error("--random takes one OUT_FILE", NULL);
        ModelConfig c = {.dtype = dtype};
        if (!model_shape_from_name(random_shape, &c)) return usage_error("unknown shape", random_shape);
        if (!convert_random(&c, seed, tokenizer_dir, argv[optind], progress, err, sizeof err)) {
            fprintf(stderr, "gpt2-convert: %s\n", err);
            return 1;
        }
        return 0;
    }
    if (positional != 2) return usage_error(positional < 2 ? "missing HF_DIR or OUT_FILE" : "too many arguments", NULL);
    ConvertOptions o = {argv[optind], tokenizer_dir, argv[optind + 1], dtype, progress};
    if (!convert_hf(&o, err, sizeof err)) {
        fprintf(stderr, "gpt2-convert: %s\n", err);
        return 1;
    }
    if (!quiet) fprintf(stderr, "wrote %s\n", o.out_path);
    return 0;
}
