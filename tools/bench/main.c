/* main.c - gpt2-bench: throughput of the engine against this machine's
 * own limits, measured in the same run.
 *
 * Owns the benchmark behind scripts/bench.sh (never run by the tests).  It
 * reports, in llama-bench's table style:
 *
 *  - the machine: read bandwidth (a 1 GiB buffer streamed with the widest
 *    vector loads of the chosen kernel set, in a few read patterns, best of
 *    several passes) and the FP32 FMA peak (independent FMA chains in
 *    registers), per thread count, at the start and again at the end;
 *  - per model file and thread count: prefill of a 512-token prompt (pp512,
 *    logits of the last row only, as llama-bench) and decoding of 128
 *    tokens from an empty context (tg128), in tokens per second;
 *  - the efficiency ratios from paired rounds: the limit, the
 *    test, the limit again, so that each ratio compares figures taken
 *    within a second of each other (this machine's bandwidth moves by half
 *    from one minute to the next);
 *  - batching: N prompts x M tokens through gpt2_generate with n_batch N,
 *    against the same N completions as N separate runs (each opening the
 *    model, generating, closing), load times included both ways;
 *  - per model file, in a fresh process: the load time, an end-to-end run
 *    of 50 tokens from a 5-token prompt, and its peak RSS.
 */
#include "bench.h"

static const char usage[] = "usage: gpt2-bench [options] MODEL...\n"
                            "\n"
                            "Measures prefill and decode throughput of gpt2 model files against the\n"
                            "read bandwidth and FMA peak of this machine, measured in the same run.\n"
                            "scripts/bench.sh makes the model files and runs this.\n"
                            "\n"
                            "  -t LIST          thread counts, comma-separated (default: 1 and all cores)\n"
                            "  -p N             prompt tokens of the prefill test (default 512)\n"
                            "  -n N             tokens of the decode test (default 128)\n"
                            "  -r N             repetitions of each test (default 5)\n"
                            "  --batch N        completions of the batch test (default 16; 0: skip)\n"
                            "  --batch-tokens N tokens each completion of the batch test generates (default 64)\n"
                            "  --batch-dtypes L dtypes the batch test runs on (default f32,q8_0)\n"
                            "  --depth N        the paired decode rounds start at position N, their bytes\n"
                            "                   counting the keys and values read (default 0)\n"
                            "  --no-e2e         skip the fresh-process load, end-to-end and RSS runs\n"
                            "  --limits         measure the machine's limits only (no model needed)\n"
                            "  -h, --help       show this help\n"
                            "\n"
                            "GPT2_KERNELS=portable|avx2|avxvnni|avx512 measures that kernel set instead of the best.\n"
                            "GPT2_PREFETCH=nta|l2|none measures with that hint everywhere, not this CPU's.\n";

/* ---- options ------------------------------------------------------------------ */

/* numparse's strict gpt2_parse_int, into an int. */
static bool parse_count(const char *s, int lo, int hi, int *out) {
    int64_t v;
    if (!gpt2_parse_int(s, lo, hi, &v)) return false;
    *out = (int)v;
    return true;
}

static bool parse_threads(const char *s, Options *o) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->n_threads = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (o->n_threads == MAX_THREAD_COUNTS || !parse_count(tok, 1, 64, &o->threads[o->n_threads])) return false;
        o->n_threads++;
    }
    return o->n_threads > 0;
}

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "gpt2-bench: %s%s%s\nTry 'gpt2-bench --help'.\n", msg, arg ? ": " : "", arg ? arg : "");
    return 2;
}

static int sort_ints(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static int by_first_steps(const void *a, const void *b) {
    const double x = ((const ModelResult *)a)->first_steps, y = ((const ModelResult *)b)->first_steps;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    enum { OPT_BATCH = 256, OPT_BATCH_TOKENS, OPT_BATCH_DTYPES, OPT_NO_E2E, OPT_E2E_CHILD, OPT_LIMITS, OPT_DEPTH };
    static const struct option longs[] = {
        {"batch", required_argument, NULL, OPT_BATCH},
        {"batch-tokens", required_argument, NULL, OPT_BATCH_TOKENS},
        {"batch-dtypes", required_argument, NULL, OPT_BATCH_DTYPES},
        {"no-e2e", no_argument, NULL, OPT_NO_E2E},
        {"limits", no_argument, NULL, OPT_LIMITS},
        {"depth", required_argument, NULL, OPT_DEPTH},
        {"e2e-child", required_argument, NULL, OPT_E2E_CHILD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Options o = {.n_prompt = 512, .n_gen = 128, .reps = 5, .batch = 16, .batch_tokens = 64, .e2e = true};
    snprintf(o.batch_dtypes, sizeof o.batch_dtypes, "f32,q8_0");
    int cores = gpt2_cpus_available();
    o.threads[0] = 1;
    o.threads[1] = cores;
    o.n_threads = cores > 1 ? 2 : 1;
    const char *child_model = NULL;
    bool limits_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "t:p:n:r:h", longs, NULL)) != -1) {
        switch (opt) {
        case 't':
            if (!parse_threads(optarg, &o)) return usage_error("bad thread list", optarg);
            break;
        case 'p':
            if (!parse_count(optarg, 1, 1 << 16, &o.n_prompt)) return usage_error("bad -p", optarg);
            break;
        case 'n':
            if (!parse_count(optarg, 1, 1 << 16, &o.n_gen)) return usage_error("bad -n", optarg);
            break;
        case 'r':
            if (!parse_count(optarg, 1, 1000, &o.reps)) return usage_error("bad -r", optarg);
            break;
        case OPT_BATCH:
            if (!parse_count(optarg, 0, 4096, &o.batch)) return usage_error("bad --batch", optarg);
            break;
        case OPT_BATCH_TOKENS:
            if (!parse_count(optarg, 1, 1 << 16, &o.batch_tokens)) return usage_error("bad --batch-tokens", optarg);
            break;
        case OPT_BATCH_DTYPES: snprintf(o.batch_dtypes, sizeof o.batch_dtypes, "%s", optarg); break;
        case OPT_NO_E2E: o.e2e = false; break;
        case OPT_E2E_CHILD: child_model = optarg; break;
        case OPT_LIMITS: limits_only = true; break;
        case OPT_DEPTH:
            if (!parse_count(optarg, 0, 1 << 16, &o.depth)) return usage_error("bad --depth", optarg);
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: return usage_error("bad option", NULL);
        }
    }
    qsort(o.threads, (size_t)o.n_threads, sizeof *o.threads, sort_ints);
    o.kernels = getenv("GPT2_KERNELS");
    if (!gpt2_kernels_select(o.kernels))
        return usage_error("GPT2_KERNELS names no kernel set this CPU runs", o.kernels);
    o.prefetch = getenv("GPT2_PREFETCH");
    if (!gpt2_kernels_stream_hints(o.prefetch, &o.stream))
        return usage_error("GPT2_PREFETCH is not nta, l2 or none", o.prefetch);
    o.max_threads = o.threads[o.n_threads - 1];
    if (child_model) return bench_e2e_child(child_model, o.max_threads);
    if (limits_only) {
        Limits lim;
        return bench_measure_limits(&o, &lim, "now") ? 0 : 1;
    }
    for (int i = optind; i < argc; i++) {
        if (o.n_models == MAX_MODELS) return usage_error("too many models", NULL);
        o.models[o.n_models++] = argv[i];
    }
    if (o.n_models == 0) return usage_error("no model file given", NULL);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    o.self = n > 0 ? (self[n] = '\0', self) : argv[0];

    Limits lim;
    if (!bench_measure_limits(&o, &lim, "at the start")) return 1;

    ModelResult res[MAX_MODELS];
    memset(res, 0, sizeof res);
    printf("## throughput (mean ± sd of %d runs after a warm-up; models in page cache; prefetch %s%s)\n\n", o.reps,
           gpt2_kernels_stream_hints_name(o.stream), o.prefetch ? ", from GPT2_PREFETCH" : "");
    bench_print_table_head();
    for (int i = 0; i < o.n_models; i++) {
        res[i].path = o.models[i];
        res[i].load_ms = -1;
        res[i].huge_share = -1;
        if (!bench_model(&o, &res[i])) return 1;
    }
    printf("\n");

    PairedSet paired;
    memset(&paired, 0, sizeof paired);
    const ModelResult *f32 = bench_find_dtype(res, o.n_models, DTYPE_F32),
                      *q8 = bench_find_dtype(res, o.n_models, DTYPE_Q8_0);
    if (f32) {
        paired.f32_bytes = f32->file_bytes;
        if (!bench_paired_rounds(&o, f32->path, PAIR_DECODE, &paired.decode_f32) ||
            !bench_paired_rounds(&o, f32->path, PAIR_PREFILL, &paired.prefill_f32))
            return 1;
    }
    if (q8) {
        paired.q8_bytes = q8->file_bytes;
        if (!bench_paired_rounds(&o, q8->path, PAIR_DECODE, &paired.decode_q8)) return 1;
    }

    BatchResult br[MAX_MODELS];
    memset(br, 0, sizeof br);
    int n_br = 0;
    for (int i = 0; i < o.n_models && o.batch > 0; i++) {
        char list[80];
        snprintf(list, sizeof list, ",%s,", o.batch_dtypes);
        char key[16];
        snprintf(key, sizeof key, ",%s,", gpt2_dtype_name(res[i].dtype));
        if (!strstr(list, key)) continue;
        if (!bench_batch(&o, &res[i], &br[n_br])) return 1;
        n_br++;
    }
    if (n_br > 0) {
        printf("## batch: %d completions x %d tokens (8-token prompts, sampled), %d threads, best of %d rounds\n\n",
               o.batch, o.batch_tokens, o.max_threads, BATCH_ROUNDS);
        printf("| model            | n_batch %-4d tok/s | separate runs tok/s | speed-up | same tokens |\n", o.batch);
        printf("| ---------------- | ----------------: | ------------------: | -------: | ----------- |\n");
        for (int i = 0; i < n_br; i++)
            printf("| gpt2 %-11s | %17.1f | %19.1f | %7.2fx | %-11s |\n", bench_dtype_label(br[i].dtype),
                   br[i].batched_tps, br[i].single_tps, br[i].batched_tps / br[i].single_tps,
                   br[i].identical ? "yes" : "NO");
        printf("\n");
    }

    if (o.e2e) {
        for (int i = 0; i < o.n_models; i++) {
            /* Best of E2E_RUNS for the load, a few milliseconds of a noisy
             * machine; the first token's cost in decoding steps is the
             * median run's. */
            ModelResult best = res[i], runs[E2E_RUNS];
            best.load_ms = INFINITY;
            for (int rep = 0; rep < E2E_RUNS; rep++) {
                ModelResult *one = &runs[rep];
                *one = res[i];
                if (!bench_e2e_run(&o, one)) return 1;
                if (one->load_ms < best.load_ms) best.load_ms = one->load_ms;
                if (rep == 0 || one->e2e_s < best.e2e_s) best.e2e_s = one->e2e_s;
                if (one->rss_bytes > best.rss_bytes) best.rss_bytes = one->rss_bytes;
            }
            qsort(runs, E2E_RUNS, sizeof *runs, by_first_steps);
            best.first_ms = runs[E2E_RUNS / 2].first_ms;
            best.step_ms = runs[E2E_RUNS / 2].step_ms;
            best.first_steps = runs[E2E_RUNS / 2].first_steps;
            res[i] = best;
        }
        bench_print_fresh_runs(res, o.n_models, o.max_threads);
    }
    /* Again at the end, to show how far the machine moved meanwhile; the
     * batch lines take the higher FMA peak of the two. */
    const double fma_start = lim.fma[o.n_threads - 1];
    if (!bench_measure_limits(&o, &lim, "at the end")) return 1;
    const double fma_peak = lim.fma[o.n_threads - 1] > fma_start ? lim.fma[o.n_threads - 1] : fma_start;
    bench_print_acceptance(&o, &paired, res, o.n_models, br, n_br, fma_peak);
    return 0;
}
