/* bench_main.c - gpt2-bench: throughput of the engine against this machine's
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
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpt2.h"
#include "kernels.h"
#include "model.h"
#include "numparse.h"
#include "threadpool.h"
#include "timer.h"
#include "transformer.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BENCH_X86 1
#endif

extern char **environ;

#define MAX_THREAD_COUNTS 8
#define MAX_MODELS 8
#define BW_BYTES ((size_t)1 << 30) /* far beyond any L3 */
#define BW_PASSES 3                /* per read pattern */
#define FMA_ITERS 4000000L
#define FMA_PASSES 5
#define E2E_PROMPT "The quick brown fox jumps" /* 5 GPT-2 tokens */
#define E2E_TOKENS 50
#define BATCH_ROUNDS 3
#define DASHES "--------------------------------------------------------------------------------"

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
                            "  --no-e2e         skip the fresh-process load, end-to-end and RSS runs\n"
                            "  --limits         measure the machine's limits only (no model needed)\n"
                            "  -h, --help       show this help\n"
                            "\n"
                            "GPT2_KERNELS=portable|avx2|avx512 measures that kernel set instead of the best.\n";

typedef struct {
    int threads[MAX_THREAD_COUNTS];
    int n_threads;   /* entries of threads */
    int max_threads; /* the largest: the acceptance figures use it */
    int n_prompt, n_gen, reps;
    int batch, batch_tokens;
    char batch_dtypes[64];
    bool e2e;
    const char *models[MAX_MODELS];
    int n_models;
    const char *self;    /* this executable, for the fresh-process runs */
    const char *kernels; /* GPT2_KERNELS, or NULL: the best this CPU runs */
} Options;

/* ---- statistics ------------------------------------------------------------ */

typedef struct {
    double mean, sd;
} Stat;

static Stat stat_of(const double *x, int n) {
    Stat s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += x[i];
    s.mean /= n;
    for (int i = 0; i < n && n > 1; i++) s.sd += (x[i] - s.mean) * (x[i] - s.mean);
    if (n > 1) s.sd = sqrt(s.sd / (n - 1));
    return s;
}

/* ---- machine limits -------------------------------------------------------- */

/* Which vector width the limits are measured with: the one the engine's
 * kernels use, so that the limits are those the kernels could reach. */
typedef enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512 } Isa;

static Isa isa_of(const char *kernel_set) {
#ifdef BENCH_X86
    if (strcmp(kernel_set, "avx512") == 0) return ISA_AVX512;
    if (strcmp(kernel_set, "avx2") == 0) return ISA_AVX2;
#endif
    (void)kernel_set;
    return ISA_SCALAR;
}

static const char *isa_name(Isa isa) { return isa == ISA_AVX512 ? "avx512" : isa == ISA_AVX2 ? "avx2" : "scalar"; }

/* Read patterns: the thread's share is cut into `streams` parts read side
 * by side, 256 bytes of each in turn, optionally prefetching `prefetch`
 * bytes ahead.  Which one this machine reads fastest varies, so the limit
 * is the best of them all. */
typedef struct {
    int streams;
    int prefetch;
} ReadPattern;

static const ReadPattern read_patterns[] = {{1, 0}, {1, 2048}, {4, 0}, {4, 2048}};
#define N_READ_PATTERNS (sizeof read_patterns / sizeof *read_patterns)

/* Prefetches the four lines (256 bytes) `distance` bytes past q, if any. */
static inline void prefetch_lines(const float *q, int distance) {
    if (!distance) return;
    const char *f = (const char *)q + distance;
    for (int line = 0; line < 4; line++) __builtin_prefetch(f + 64 * line, 0, 3);
}

/* Sums the floats of p[0..n) (n a multiple of 64 * streams) with 64-byte
 * loads, in four independent chains so that the adds never limit the
 * loads. */
#ifdef BENCH_X86
__attribute__((target("avx512f"))) static float read_avx512(const float *p, size_t n, ReadPattern rp) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const size_t part = n / (size_t)rp.streams;
    for (size_t i = 0; i < part; i += 64) {
        for (int s = 0; s < rp.streams; s++) {
            const float *q = p + (size_t)s * part + i;
            prefetch_lines(q, rp.prefetch);
            a0 = _mm512_add_ps(a0, _mm512_load_ps(q));
            a1 = _mm512_add_ps(a1, _mm512_load_ps(q + 16));
            a2 = _mm512_add_ps(a2, _mm512_load_ps(q + 32));
            a3 = _mm512_add_ps(a3, _mm512_load_ps(q + 48));
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

__attribute__((target("avx2"))) static float read_avx2(const float *p, size_t n, ReadPattern rp) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const size_t part = n / (size_t)rp.streams;
    for (size_t i = 0; i < part; i += 64) {
        for (int s = 0; s < rp.streams; s++) {
            const float *q = p + (size_t)s * part + i;
            prefetch_lines(q, rp.prefetch);
            for (int j = 0; j < 64; j += 32) {
                a0 = _mm256_add_ps(a0, _mm256_load_ps(q + j));
                a1 = _mm256_add_ps(a1, _mm256_load_ps(q + j + 8));
                a2 = _mm256_add_ps(a2, _mm256_load_ps(q + j + 16));
                a3 = _mm256_add_ps(a3, _mm256_load_ps(q + j + 24));
            }
        }
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float f[8];
    _mm256_storeu_ps(f, s);
    return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#endif

static float read_scalar(const float *p, size_t n, ReadPattern rp) {
    float a[8] = {0};
    const size_t part = n / (size_t)rp.streams;
    for (size_t i = 0; i < part; i += 64)
        for (int s = 0; s < rp.streams; s++)
            for (size_t j = 0; j < 64; j++) a[j % 8] += p[(size_t)s * part + i + j];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

typedef struct {
    Isa isa;
    ReadPattern pattern;
    const float *buf;
    size_t n;       /* floats */
    float sums[64]; /* one per thread, so that the loads are not dead */
} ReadJob;

static void run_read(void *ctx, int i, int n_threads) {
    ReadJob *job = ctx;
    const size_t unit = 64 * (size_t)job->pattern.streams; /* floats */
    size_t units = job->n / unit;
    size_t begin = units * (size_t)i / (size_t)n_threads * unit;
    size_t end = units * (size_t)(i + 1) / (size_t)n_threads * unit;
    float s;
#ifdef BENCH_X86
    if (job->isa == ISA_AVX512) s = read_avx512(job->buf + begin, end - begin, job->pattern);
    else if (job->isa == ISA_AVX2) s = read_avx2(job->buf + begin, end - begin, job->pattern);
    else
#endif
        s = read_scalar(job->buf + begin, end - begin, job->pattern);
    job->sums[i % 64] = s;
}

/* The BW_BYTES buffer the bandwidth is read from, every page mapped, or
 * NULL.  It asks for 2 MiB pages as the model mapping does (fileio.c):
 * the limit must be the fastest the machine reads, not a 4 KiB-page
 * figure the weights could beat. */
static float *bandwidth_buffer_new(void) {
    const size_t huge = (size_t)2 << 20;
    float *buf = NULL;
    if (posix_memalign((void **)&buf, huge, BW_BYTES) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, BW_BYTES, MADV_HUGEPAGE);
#endif
    memset(buf, 0, BW_BYTES);
    return buf;
}

/* Best read bandwidth in bytes/s over BW_PASSES passes of `pool` with
 * each read pattern. */
static double read_bandwidth(ThreadPool *pool, Isa isa, const float *buf) {
    double best = 0;
    for (size_t k = 0; k < N_READ_PATTERNS; k++) {
        ReadJob job = {.isa = isa, .pattern = read_patterns[k], .buf = buf, .n = BW_BYTES / sizeof(float)};
        for (int pass = 0; pass < BW_PASSES; pass++) {
            double t0 = now_ms();
            gpt2_threadpool_run(pool, run_read, &job);
            double bps = (double)BW_BYTES / ((now_ms() - t0) / 1e3);
            if (bps > best) best = bps;
        }
    }
    return best;
}

/* `iters` rounds of FMA_CHAINS independent chains acc = acc * m + a; m < 1
 * keeps every value finite and normal.  Returns a value that depends on all
 * of them. */
#define FMA_CHAINS 16
#ifdef BENCH_X86
__attribute__((target("avx512f"))) static float fma_avx512(long iters) {
    __m512 acc[FMA_CHAINS];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    for (int j = 0; j < FMA_CHAINS; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16 /* the chains must live in registers */
        for (int j = 0; j < FMA_CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
    __m512 s = acc[0];
    for (int j = 1; j < FMA_CHAINS; j++) s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}

/* AVX2 has 16 registers: 12 chains leave room for the constants. */
#define FMA_CHAINS_AVX2 12
__attribute__((target("avx2,fma"))) static float fma_avx2(long iters) {
    __m256 acc[FMA_CHAINS_AVX2];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    for (int j = 0; j < FMA_CHAINS_AVX2; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int j = 0; j < FMA_CHAINS_AVX2; j++) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
    __m256 s = acc[0];
    for (int j = 1; j < FMA_CHAINS_AVX2; j++) s = _mm256_add_ps(s, acc[j]);
    float f[8];
    _mm256_storeu_ps(f, s);
    return f[0] + f[7];
}
#endif

static float fma_scalar(long iters) {
    float acc[FMA_CHAINS];
    for (int j = 0; j < FMA_CHAINS; j++) acc[j] = (float)j;
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int j = 0; j < FMA_CHAINS; j++) acc[j] = fmaf(acc[j], 0.999999f, 1e-6f);
    float s = 0;
    for (int j = 0; j < FMA_CHAINS; j++) s += acc[j];
    return s;
}

/* FLOPs one call of the FMA loop of isa does per iteration (an FMA is 2). */
static double fma_flops_per_iter(Isa isa) {
    if (isa == ISA_AVX512) return FMA_CHAINS * 16 * 2;
    if (isa == ISA_AVX2) return 12 * 8 * 2;
    return FMA_CHAINS * 2;
}

typedef struct {
    Isa isa;
    long iters;
    float sums[64];
} FmaJob;

static void run_fma(void *ctx, int i, int n_threads) {
    (void)n_threads;
    FmaJob *job = ctx;
    float s;
#ifdef BENCH_X86
    if (job->isa == ISA_AVX512) s = fma_avx512(job->iters);
    else if (job->isa == ISA_AVX2) s = fma_avx2(job->iters);
    else
#endif
        s = fma_scalar(job->iters);
    job->sums[i % 64] = s;
}

/* Best FLOP/s of all threads of pool together over FMA_PASSES passes. */
static double fma_peak(ThreadPool *pool, Isa isa) {
    FmaJob job = {.isa = isa, .iters = isa == ISA_SCALAR ? FMA_ITERS / 8 : FMA_ITERS};
    double best = 0;
    for (int pass = 0; pass < FMA_PASSES; pass++) {
        double t0 = now_ms();
        gpt2_threadpool_run(pool, run_fma, &job);
        double flops = fma_flops_per_iter(isa) * (double)job.iters * gpt2_threadpool_size(pool);
        double fps = flops / ((now_ms() - t0) / 1e3);
        if (fps > best) best = fps;
    }
    return best;
}

typedef struct {
    double bandwidth[MAX_THREAD_COUNTS]; /* bytes/s, per entry of Options.threads */
    double fma[MAX_THREAD_COUNTS];       /* FLOP/s */
    Isa isa;
} Limits;

/* Measures the limits at every thread count; `when` names the moment. */
static bool measure_limits(const Options *o, Limits *lim, const char *when) {
    const KernelSet *k = gpt2_kernels_select(o->kernels);
    lim->isa = isa_of(k->name);
    float *buf = bandwidth_buffer_new();
    if (!buf) {
        fprintf(stderr, "gpt2-bench: no memory for the 1 GiB bandwidth buffer\n");
        return false;
    }
    printf("## machine limits, %s (%s instructions)\n\n", when, isa_name(lim->isa));
    printf("| limit                                         | threads |             value |\n");
    printf("| --------------------------------------------- | ------: | ----------------: |\n");
    for (int i = 0; i < o->n_threads; i++) {
        ThreadPool *pool = gpt2_threadpool_create(o->threads[i]);
        if (!pool) {
            free(buf);
            return false;
        }
        lim->bandwidth[i] = read_bandwidth(pool, lim->isa, buf);
        lim->fma[i] = fma_peak(pool, lim->isa);
        gpt2_threadpool_free(pool);
        printf("| read bandwidth (1 GiB, best of %2zu)            | %7d | %10.2f GB/s |\n", BW_PASSES * N_READ_PATTERNS,
               o->threads[i], lim->bandwidth[i] / 1e9);
        printf("| FP32 FMA peak (independent chains, best of %d) | %7d | %7.1f GFLOP/s |\n", FMA_PASSES, o->threads[i],
               lim->fma[i] / 1e9);
        fflush(stdout);
    }
    printf("\n");
    free(buf);
    return true;
}

/* ---- the model tests --------------------------------------------------------- */

static uint64_t params_of(const ModelConfig *c) {
    uint64_t C = c->n_embd;
    return (uint64_t)c->n_vocab * C + (uint64_t)c->n_ctx * C + c->n_layer * (12 * C * C + 13 * C) + 2 * C;
}

/* FLOPs of a prefill of n tokens from an empty context with the logits of
 * the last row only (an FMA counts 2):
 *   n * 24 C^2 L                  the four matrix products of each layer
 *                                 (qkv 3C^2, proj C^2, fc 4C^2, mlp 4C^2 MACs)
 * + 4 C L * (1 + 2 + ... + n)     attention: q.k and p.v over t+1 keys at
 *                                 position t, all heads together C MACs each
 * + 2 C V                         the output head for the last row.
 * For GPT-2 124M and n = 512 this is 179.5 MFLOP per token. */
static double prefill_flops(const ModelConfig *c, int n) {
    const double C = c->n_embd, L = c->n_layer, N = n;
    return N * 24 * C * C * L + 4 * C * L * N * (N + 1) / 2 + 2 * C * c->n_vocab;
}

/* Cache bytes one sequence fills over the whole context (transformer.h). */
static double kv_cache_bytes(const ModelConfig *c) {
    double n_ctx16 = (c->n_ctx + 15) / 16 * 16;
    return (double)c->n_layer * (n_ctx16 + c->n_ctx) * c->n_embd * sizeof(float);
}

static const char *dtype_label(DType t) {
    static const char *const labels[DTYPE_COUNT] = {"F32", "F16", "BF16", "Q8_0"};
    return (unsigned)t < DTYPE_COUNT ? labels[t] : "?";
}

/* Deterministic pseudo-random token ids (a 64-bit LCG). */
static void random_tokens(int32_t *ids, size_t n, uint32_t n_vocab, uint64_t seed) {
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int32_t)((s >> 33) % n_vocab);
    }
}

typedef struct {
    Transformer tf;
    int32_t *tokens; /* [max(n_prompt, n_gen)] */
    uint32_t *pos, *seq;
    float *logits; /* [n_vocab] */
} Runner;

/* Evaluates tokens[0..n) from an empty context as one batch (prefill) or
 * one at a time (decode). Returns the milliseconds it took, or -1. */
static double run_tokens(Runner *r, int n, bool one_by_one) {
    char err[256];
    gpt2_transformer_reset(&r->tf, 0);
    double t0 = now_ms();
    size_t step = one_by_one ? 1 : (size_t)n;
    for (size_t i = 0; i < (size_t)n; i += step) {
        Batch b = {step, r->tokens + i, r->pos + i, r->seq, NULL};
        if (!gpt2_transformer_forward(&r->tf, &b, r->logits, err, sizeof err)) {
            fprintf(stderr, "gpt2-bench: %s\n", err);
            return -1;
        }
    }
    return now_ms() - t0;
}

typedef struct {
    const char *path;
    DType dtype;
    ModelConfig config;
    uint64_t file_bytes;
    Stat pp[MAX_THREAD_COUNTS], tg[MAX_THREAD_COUNTS]; /* tokens/s */
    double load_ms, e2e_s, rss_bytes;                  /* from the fresh process; < 0: not run */
} ModelResult;

static void print_table_head(void) {
    printf("| model            |       size |     params | kernels  | threads |  test |                  t/s |\n");
    printf("| ---------------- | ---------: | ---------: | -------- | ------: | ----: | -------------------: |\n");
}

static void print_row(const ModelResult *m, const char *kernels, int threads, const char *test, Stat s) {
    char name[64];
    snprintf(name, sizeof name, "gpt2 %.0fM %s", (double)params_of(&m->config) / 1e6, dtype_label(m->dtype));
    printf("| %-16s | %6.2f MiB | %8.2f M | %-8s | %7d | %5s | %10.2f ± %7.2f |\n", name,
           (double)m->file_bytes / (1 << 20), (double)params_of(&m->config) / 1e6, kernels, threads, test, s.mean,
           s.sd);
    fflush(stdout);
}

/* pp and tg of one model at every thread count. */
static bool bench_model(const Options *o, ModelResult *res) {
    Model model;
    char err[512];
    if (!gpt2_model_open(&model, res->path, err, sizeof err)) {
        fprintf(stderr, "gpt2-bench: %s: %s\n", res->path, err);
        return false;
    }
    res->config = model.config;
    res->dtype = model.config.dtype;
    res->file_bytes = model.n_bytes;
    const KernelSet *k = gpt2_kernels_select(o->kernels);
    const int n_max = o->n_prompt > o->n_gen ? o->n_prompt : o->n_gen;
    Runner r = {0};
    r.tokens = malloc((size_t)n_max * sizeof *r.tokens);
    r.pos = malloc((size_t)n_max * sizeof *r.pos);
    r.seq = calloc((size_t)n_max, sizeof *r.seq);
    r.logits = malloc(model.config.n_vocab * sizeof *r.logits);
    double *times = malloc((size_t)o->reps * sizeof *times);
    bool ok = r.tokens && r.pos && r.seq && r.logits && times;
    if (!ok) fprintf(stderr, "gpt2-bench: out of memory\n");
    if (ok) {
        random_tokens(r.tokens, (size_t)n_max, model.config.n_vocab, 42);
        for (int i = 0; i < n_max; i++) r.pos[i] = (uint32_t)i;
    }
    char pp_name[16], tg_name[16];
    snprintf(pp_name, sizeof pp_name, "pp%d", o->n_prompt);
    snprintf(tg_name, sizeof tg_name, "tg%d", o->n_gen);
    for (int ti = 0; ok && ti < o->n_threads; ti++) {
        ok = gpt2_transformer_build(&r.tf, &model, k, 1, (size_t)o->n_prompt, o->threads[ti], err, sizeof err);
        if (!ok) {
            fprintf(stderr, "gpt2-bench: %s\n", err);
            break;
        }
        /* A warm-up of each: the weights' pages mapped, the caches touched. */
        ok = run_tokens(&r, o->n_prompt, false) >= 0 && run_tokens(&r, o->n_gen, true) >= 0;
        for (int i = 0; ok && i < o->reps; i++) {
            double ms = run_tokens(&r, o->n_prompt, false);
            ok = ms > 0;
            times[i] = o->n_prompt / (ms / 1e3);
        }
        if (ok) res->pp[ti] = stat_of(times, o->reps);
        if (ok) print_row(res, k->name, o->threads[ti], pp_name, res->pp[ti]);
        for (int i = 0; ok && i < o->reps; i++) {
            double ms = run_tokens(&r, o->n_gen, true);
            ok = ms > 0;
            times[i] = o->n_gen / (ms / 1e3);
        }
        if (ok) res->tg[ti] = stat_of(times, o->reps);
        if (ok) print_row(res, k->name, o->threads[ti], tg_name, res->tg[ti]);
        gpt2_transformer_free(&r.tf);
    }
    free(times);
    free(r.tokens);
    free(r.pos);
    free(r.seq);
    free(r.logits);
    gpt2_model_close(&model);
    return ok;
}

/* ---- paired rounds: throughput against the limit measured around it ------- */

/* The machine's bandwidth moves by half or more from one minute to the
 * next (its neighbours), so a ratio is only meaningful between figures
 * taken together.  A round measures the limit, runs the test, and
 * measures the limit again; its ratio is against the higher of the two. */
typedef enum { PAIR_DECODE, PAIR_PREFILL } PairKind;

typedef struct {
    double median, lo, hi; /* ratio to the limit over the rounds */
    double tps, limit;     /* tokens/s and limit of the median round */
    bool ran;
} Paired;

static int sort_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    PairKind kind;
    Runner *r;
    Isa isa;
    const float *buf; /* BW_BYTES for the bandwidth */
} PairCtx;

static double pair_limit(const PairCtx *c) {
    if (c->kind == PAIR_DECODE) return read_bandwidth(c->r->tf.pool, c->isa, c->buf);
    return fma_peak(c->r->tf.pool, c->isa);
}

/* Rounds of one test of one model at the largest thread count. */
static bool paired_rounds(const Options *o, const char *path, PairKind kind, Paired *out) {
    Model model;
    char err[512] = "out of memory"; /* what the allocations below fail with */
    if (!gpt2_model_open(&model, path, err, sizeof err)) {
        fprintf(stderr, "gpt2-bench: %s: %s\n", path, err);
        return false;
    }
    const KernelSet *k = gpt2_kernels_select(o->kernels);
    const int n = kind == PAIR_DECODE ? o->n_gen : o->n_prompt;
    Runner r = {0};
    r.tokens = malloc((size_t)n * sizeof *r.tokens);
    r.pos = malloc((size_t)n * sizeof *r.pos);
    r.seq = calloc((size_t)n, sizeof *r.seq);
    r.logits = malloc(model.config.n_vocab * sizeof *r.logits);
    double *ratio = malloc((size_t)o->reps * sizeof *ratio), *tps = malloc((size_t)o->reps * sizeof *tps);
    double *limit = malloc((size_t)o->reps * sizeof *limit);
    float *buf = NULL;
    bool ok = r.tokens && r.pos && r.seq && r.logits && ratio && tps && limit &&
              (kind != PAIR_DECODE || (buf = bandwidth_buffer_new()) != NULL);
    ok = ok && gpt2_transformer_build(&r.tf, &model, k, 1, (size_t)n, o->max_threads, err, sizeof err);
    if (ok) {
        random_tokens(r.tokens, (size_t)n, model.config.n_vocab, 42);
        for (int i = 0; i < n; i++) r.pos[i] = (uint32_t)i;
        PairCtx c = {kind, &r, isa_of(k->name), buf};
        const double work = kind == PAIR_DECODE ? (double)model.n_bytes : prefill_flops(&model.config, n) / n;
        ok = run_tokens(&r, n, kind == PAIR_DECODE) > 0; /* warm-up */
        double before = ok ? pair_limit(&c) : 0;
        for (int i = 0; ok && i < o->reps; i++) {
            double ms = run_tokens(&r, n, kind == PAIR_DECODE), after = pair_limit(&c);
            ok = ms > 0;
            tps[i] = n / (ms / 1e3);
            limit[i] = before > after ? before : after;
            ratio[i] = tps[i] * work / limit[i];
            before = after;
        }
        gpt2_transformer_free(&r.tf);
    } else {
        fprintf(stderr, "gpt2-bench: %s\n", err);
    }
    if (ok) {
        double *sorted = malloc((size_t)o->reps * sizeof *sorted);
        ok = sorted != NULL;
        if (ok) {
            memcpy(sorted, ratio, (size_t)o->reps * sizeof *sorted);
            qsort(sorted, (size_t)o->reps, sizeof *sorted, sort_doubles);
            out->median = sorted[o->reps / 2];
            out->lo = sorted[0];
            out->hi = sorted[o->reps - 1];
            for (int i = 0; i < o->reps; i++)
                if (ratio[i] == out->median) {
                    out->tps = tps[i];
                    out->limit = limit[i];
                }
            out->ran = true;
        }
        free(sorted);
    }
    free(buf);
    free(ratio);
    free(tps);
    free(limit);
    free(r.tokens);
    free(r.pos);
    free(r.seq);
    free(r.logits);
    gpt2_model_close(&model);
    return ok;
}

/* ---- batching -------------------------------------------------------------- */

typedef struct {
    DType dtype;
    double batched_tps, single_tps; /* generated tokens per second, all completions together */
    bool identical;                 /* every completion gave the same tokens both ways */
    bool ran;
} BatchResult;

/* Runs the completions c[0..n): with `together`, all on one Gpt2 with
 * n_batch n, as one `gpt2 --batch` does; otherwise each on a Gpt2 of its
 * own, opened and closed around it, as n separate runs of gpt2 do.  Returns
 * the seconds it took, opening and closing included, or -1. */
static double run_completions(const Options *o, const char *path, bool together, Gpt2Completion *c, size_t n) {
    char err[512];
    Gpt2Options opt = {.n_threads = o->max_threads, .n_batch = together ? (uint32_t)n : 1, .kernels = o->kernels};
    const size_t runs = together ? 1 : n, per_run = together ? n : 1;
    double t0 = now_ms();
    for (size_t r = 0; r < runs; r++) {
        Gpt2 *g = gpt2_open(path, &opt, err, sizeof err);
        if (!g) {
            fprintf(stderr, "gpt2-bench: %s\n", err);
            return -1;
        }
        bool ok = gpt2_generate(g, c + r * per_run, per_run, NULL, err, sizeof err);
        gpt2_close(g);
        if (!ok) {
            fprintf(stderr, "gpt2-bench: %s\n", err);
            return -1;
        }
    }
    return (now_ms() - t0) / 1e3;
}

/* n completions of 8 random prompt tokens each, sampled (temperature 1,
 * top-k 40, a seed each), never stopping early. */
static void batch_requests(Gpt2Completion *c, int32_t *prompts, size_t n, uint32_t n_vocab, uint32_t n_tokens) {
    for (size_t i = 0; i < n; i++) {
        random_tokens(prompts + i * 8, 8, n_vocab, 1000 + i);
        memset(&c[i], 0, sizeof c[i]);
        c[i].prompt = prompts + i * 8;
        c[i].n_prompt = 8;
        c[i].params = gpt2_default_params();
        c[i].params.n_predict = n_tokens;
        c[i].params.ignore_eos = true;
        c[i].params.sampling.seed = i + 1;
    }
}

/* One round: the completions together, then as separate runs.  Returns
 * false on a failure; *identical says whether both gave the same tokens. */
static bool batch_round(const Options *o, const ModelResult *m, double *batched_tps, double *single_tps,
                        bool *identical) {
    const size_t n = (size_t)o->batch;
    Gpt2Completion *a = calloc(n, sizeof *a), *b = calloc(n, sizeof *b);
    int32_t *prompts = malloc(n * 8 * sizeof *prompts);
    bool ok = a && b && prompts;
    if (ok) {
        batch_requests(a, prompts, n, m->config.n_vocab, (uint32_t)o->batch_tokens);
        batch_requests(b, prompts, n, m->config.n_vocab, (uint32_t)o->batch_tokens);
        double s_batched = run_completions(o, m->path, true, a, n);
        double s_single = s_batched > 0 ? run_completions(o, m->path, false, b, n) : -1;
        ok = s_batched > 0 && s_single > 0;
        size_t tokens_a = 0, tokens_b = 0;
        *identical = ok;
        for (size_t i = 0; ok && i < n; i++) {
            tokens_a += a[i].n_tokens;
            tokens_b += b[i].n_tokens;
            *identical = *identical && a[i].n_tokens == b[i].n_tokens &&
                         memcmp(a[i].tokens, b[i].tokens, a[i].n_tokens * sizeof *a[i].tokens) == 0;
        }
        if (ok) {
            *batched_tps = (double)tokens_a / s_batched;
            *single_tps = (double)tokens_b / s_single;
        }
    }
    for (size_t i = 0; a && b && i < n; i++) {
        gpt2_completion_free(&a[i]);
        gpt2_completion_free(&b[i]);
    }
    free(a);
    free(b);
    free(prompts);
    return ok;
}

/* BATCH_ROUNDS rounds of both ways, the best of each kept: separate runs
 * are bound by the bandwidth, which moves, and batched by arithmetic, which
 * does not, so taking both from one moment alone would favour either. */
static bool bench_batch(const Options *o, const ModelResult *m, BatchResult *res) {
    res->dtype = m->dtype;
    res->identical = true;
    for (int round = 0; round < BATCH_ROUNDS; round++) {
        double batched, single;
        bool identical;
        if (!batch_round(o, m, &batched, &single, &identical)) return false;
        res->identical = res->identical && identical;
        if (batched > res->batched_tps) res->batched_tps = batched;
        if (single > res->single_tps) res->single_tps = single;
    }
    res->ran = true;
    return true;
}

/* ---- fresh-process runs: load time, end to end, peak RSS ------------------ */

/* This process's peak resident set in KiB.  Linux's VmHWM belongs to the
 * address space, which exec replaced; ru_maxrss would also count the
 * parent's pages from before the exec. */
static long peak_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    if (kib < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kib = ru.ru_maxrss;
    }
    return kib;
}

/* The child side: opens the model, generates E2E_TOKENS tokens from
 * E2E_PROMPT, and prints what it measured on one line. */
static int e2e_child(const char *path, int threads) {
    double t0 = now_ms();
    char err[512];
    Gpt2Options opt = {.n_threads = threads, .n_batch = 1, .kernels = getenv("GPT2_KERNELS")};
    Gpt2 *g = gpt2_open(path, &opt, err, sizeof err);
    if (!g) {
        fprintf(stderr, "gpt2-bench: %s\n", err);
        return 1;
    }
    double load_ms = now_ms() - t0;
    Gpt2Completion c = {.params = gpt2_default_params()};
    int32_t *ids = NULL;
    size_t n_ids = 0;
    bool ok = gpt2_tokenize(g, E2E_PROMPT, strlen(E2E_PROMPT), false, &ids, &n_ids, err, sizeof err);
    c.prompt = ids;
    c.n_prompt = n_ids;
    c.params.n_predict = E2E_TOKENS;
    c.params.ignore_eos = true;
    ok = ok && gpt2_generate(g, &c, 1, NULL, err, sizeof err);
    size_t n_tokens = c.n_tokens;
    gpt2_completion_free(&c);
    free(ids);
    gpt2_close(g);
    double total_ms = now_ms() - t0;
    if (!ok) return 1;
    printf("load_ms %.3f total_ms %.3f prompt %zu tokens %zu maxrss_kib %ld\n", load_ms, total_ms, n_ids, n_tokens,
           peak_rss_kib());
    return 0;
}

/* Runs e2e_child in a fresh process (this executable again) and reads its
 * line.  e2e_s is the child's whole life, from spawn to exit. */
static bool e2e_run(const Options *o, ModelResult *m) {
    int fd[2];
    if (pipe(fd) != 0) return false;
    char threads[16];
    snprintf(threads, sizeof threads, "%d", o->max_threads);
    char *argv[] = {(char *)o->self, "--e2e-child", (char *)m->path, "-t", threads, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fd[0]);
    pid_t pid;
    double t0 = now_ms();
    int rc = posix_spawn(&pid, o->self, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd[1]);
    if (rc != 0) {
        close(fd[0]);
        fprintf(stderr, "gpt2-bench: cannot run %s: %s\n", o->self, strerror(rc));
        return false;
    }
    char line[512];
    size_t len = 0;
    ssize_t got;
    while (len + 1 < sizeof line && (got = read(fd[0], line + len, sizeof line - 1 - len)) != 0) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        len += (size_t)got;
    }
    line[len] = '\0';
    close(fd[0]);
    int status = 0;
    pid_t waited;
    while ((waited = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    if (waited < 0) {
        fprintf(stderr, "gpt2-bench: waiting for the end-to-end run: %s\n", strerror(errno));
        return false;
    }
    m->e2e_s = (now_ms() - t0) / 1e3;
    double load_ms, total_ms;
    size_t n_prompt, n_tokens;
    long rss_kib;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(line, "load_ms %lf total_ms %lf prompt %zu tokens %zu maxrss_kib %ld", &load_ms, &total_ms, &n_prompt,
               &n_tokens, &rss_kib) != 5) {
        fprintf(stderr, "gpt2-bench: the end-to-end run of %s failed\n", m->path);
        return false;
    }
    m->load_ms = load_ms;
    m->rss_bytes = (double)rss_kib * 1024;
    return true;
}

/* ---- the report ------------------------------------------------------------- */

static const ModelResult *find_dtype(const ModelResult *m, int n, DType t) {
    for (int i = 0; i < n; i++)
        if (m[i].dtype == t) return &m[i];
    return NULL;
}

/* One line of the acceptance table.  `spread` is free text (the range
 * over the rounds); a NULL target_text marks a line shown for information. */
static void criterion(const char *what, const char *measured, const char *spread, const char *target_text, bool ok) {
    printf("| %-72s | %10s | %-13s | %-10s | %-4s |\n", what, measured, spread, target_text ? target_text : "",
           !target_text ? "info"
           : ok         ? "PASS"
                        : "FAIL");
}

/* The three ratios come from the paired rounds. */
typedef struct {
    Paired decode_f32, decode_q8, prefill_f32;
    uint64_t f32_bytes, q8_bytes;
} PairedSet;

static void paired_line(const char *what, const Paired *p, double target, const char *target_text) {
    char measured[32], spread[48];
    snprintf(measured, sizeof measured, "%.1f %%", 100 * p->median);
    snprintf(spread, sizeof spread, "%.1f..%.1f %%", 100 * p->lo, 100 * p->hi);
    criterion(what, measured, spread, target_text, 100 * p->median >= target);
}

static void print_acceptance(const Options *o, const PairedSet *ps, const ModelResult *m, int n_models,
                             const BatchResult *br, int n_br) {
    printf("## acceptance (%d threads; a ratio is the median of %d rounds, each against the limit measured\n"
           "## just before and after it, the higher of the two; the rounds' range beside it)\n\n",
           o->max_threads, o->reps);
    printf("| %-72s | %10s | %-13s | %-10s | %-4s |\n", "criterion", "measured", "rounds", "target", "ok");
    printf("| %.72s | %.9s: | %.13s | %.10s | %.4s |\n", DASHES, DASHES, DASHES, DASHES, DASHES);
    char what[160], measured[32];
    if (ps->decode_f32.ran) {
        const Paired *p = &ps->decode_f32;
        snprintf(what, sizeof what, "decode f32 tg%d: %.1f tok/s x %.1f MB = %.2f of %.2f GB/s read", o->n_gen, p->tps,
                 (double)ps->f32_bytes / 1e6, p->tps * (double)ps->f32_bytes / 1e9, p->limit / 1e9);
        paired_line(what, p, 90, ">= 90 %");
    }
    if (ps->decode_q8.ran) {
        const Paired *p = &ps->decode_q8;
        snprintf(what, sizeof what, "decode q8_0 tg%d: %.1f tok/s of the bound %.2f GB/s / %.1f MB = %.1f", o->n_gen,
                 p->tps, p->limit / 1e9, (double)ps->q8_bytes / 1e6, p->limit / (double)ps->q8_bytes);
        paired_line(what, p, 80, ">= 80 %");
    }
    if (ps->prefill_f32.ran) {
        const Paired *p = &ps->prefill_f32;
        snprintf(what, sizeof what, "prefill f32 pp%d: %.0f tok/s x %.1f MFLOP = %.1f of %.1f GFLOP/s FMA", o->n_prompt,
                 p->tps, p->median * p->limit / p->tps / 1e6, p->median * p->limit / 1e9, p->limit / 1e9);
        paired_line(what, p, 55, ">= 55 %");
    }
    for (int i = 0; i < n_br; i++) {
        if (!br[i].ran) continue;
        const double speedup = br[i].identical ? br[i].batched_tps / br[i].single_tps : 0;
        snprintf(what, sizeof what, "batch %s %dx%d: %.1f tok/s with n_batch %d, %.1f in separate runs%s",
                 gpt2_dtype_name(br[i].dtype), o->batch, o->batch_tokens, br[i].batched_tps, o->batch, br[i].single_tps,
                 br[i].identical ? "" : " (TOKENS DIFFER)");
        snprintf(measured, sizeof measured, "%.2f x", speedup);
        /* The criterion is about sharing weight reads, which decoding f32
         * is bound by; q8_0 decodes near its bandwidth bound one by one and
         * batched is bound by arithmetic, so its line is information. */
        criterion(what, measured, "", br[i].dtype == DTYPE_F32 ? ">= 8 x" : NULL, speedup >= 8);
    }
    const ModelResult *f32 = find_dtype(m, n_models, DTYPE_F32);
    if (f32 && f32->rss_bytes > 0) {
        double limit = (double)f32->file_bytes + kv_cache_bytes(&f32->config) + 64.0 * (1 << 20);
        snprintf(what, sizeof what, "peak RSS f32, %d tokens: file %.1f + KV cache %.1f + 64 MiB = %.1f MiB",
                 E2E_TOKENS, (double)f32->file_bytes / (1 << 20), kv_cache_bytes(&f32->config) / (1 << 20),
                 limit / (1 << 20));
        snprintf(measured, sizeof measured, "%.1f MiB", f32->rss_bytes / (1 << 20));
        criterion(what, measured, "", "<= limit", f32->rss_bytes <= limit);
    }
    double min_load = INFINITY, max_load = 0, min_size = INFINITY, max_size = 0;
    for (int i = 0; i < n_models; i++) {
        if (m[i].load_ms < 0) continue;
        if (m[i].load_ms < min_load) min_load = m[i].load_ms;
        if (m[i].load_ms > max_load) max_load = m[i].load_ms;
        if ((double)m[i].file_bytes < min_size) min_size = (double)m[i].file_bytes;
        if ((double)m[i].file_bytes > max_size) max_size = (double)m[i].file_bytes;
    }
    if (max_load > 0 && max_size > min_size) {
        /* Load time must not follow the size: over files max_size/min_size
         * apart, the slowest load may take at most 1.5 times the fastest
         * (plus 1 ms of noise). */
        snprintf(what, sizeof what, "load time over files of %.0f..%.0f MB (%.1fx): %.2f..%.2f ms", min_size / 1e6,
                 max_size / 1e6, max_size / min_size, min_load, max_load);
        snprintf(measured, sizeof measured, "%.2f x", max_load / min_load);
        criterion(what, measured, "", "<= 1.5 x", max_load <= 1.5 * min_load + 1);
    }
    printf("\n");
}

static void print_fresh_runs(const ModelResult *m, int n_models, int threads) {
    printf("## fresh process: open, %d tokens from a 5-token prompt, close (%d threads)\n\n", E2E_TOKENS, threads);
    printf("| model            |       size | load ms | end-to-end s | peak RSS MiB |\n");
    printf("| ---------------- | ---------: | ------: | -----------: | -----------: |\n");
    for (int i = 0; i < n_models; i++) {
        if (m[i].load_ms < 0) continue;
        char name[64];
        snprintf(name, sizeof name, "gpt2 %.0fM %s", (double)params_of(&m[i].config) / 1e6, dtype_label(m[i].dtype));
        printf("| %-16s | %6.2f MiB | %7.2f | %12.3f | %12.1f |\n", name, (double)m[i].file_bytes / (1 << 20),
               m[i].load_ms, m[i].e2e_s, m[i].rss_bytes / (1 << 20));
    }
    printf("\n");
}

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

int main(int argc, char **argv) {
    enum { OPT_BATCH = 256, OPT_BATCH_TOKENS, OPT_BATCH_DTYPES, OPT_NO_E2E, OPT_E2E_CHILD, OPT_LIMITS };
    static const struct option longs[] = {
        {"batch", required_argument, NULL, OPT_BATCH},
        {"batch-tokens", required_argument, NULL, OPT_BATCH_TOKENS},
        {"batch-dtypes", required_argument, NULL, OPT_BATCH_DTYPES},
        {"no-e2e", no_argument, NULL, OPT_NO_E2E},
        {"limits", no_argument, NULL, OPT_LIMITS},
        {"e2e-child", required_argument, NULL, OPT_E2E_CHILD},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    Options o = {.n_prompt = 512, .n_gen = 128, .reps = 5, .batch = 16, .batch_tokens = 64, .e2e = true};
    snprintf(o.batch_dtypes, sizeof o.batch_dtypes, "f32,q8_0");
    int cores = gpt2_threadpool_cpu_count();
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
        case 'h': fputs(usage, stdout); return 0;
        default: return usage_error("bad option", NULL);
        }
    }
    qsort(o.threads, (size_t)o.n_threads, sizeof *o.threads, sort_ints);
    o.kernels = getenv("GPT2_KERNELS");
    if (!gpt2_kernels_select(o.kernels))
        return usage_error("GPT2_KERNELS names no kernel set this CPU runs", o.kernels);
    o.max_threads = o.threads[o.n_threads - 1];
    if (child_model) return e2e_child(child_model, o.max_threads);
    if (limits_only) {
        Limits lim;
        return measure_limits(&o, &lim, "now") ? 0 : 1;
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
    if (!measure_limits(&o, &lim, "at the start")) return 1;

    ModelResult res[MAX_MODELS];
    memset(res, 0, sizeof res);
    printf("## throughput (mean ± sd of %d runs after a warm-up; models in page cache)\n\n", o.reps);
    print_table_head();
    for (int i = 0; i < o.n_models; i++) {
        res[i].path = o.models[i];
        res[i].load_ms = -1;
        if (!bench_model(&o, &res[i])) return 1;
    }
    printf("\n");

    PairedSet paired;
    memset(&paired, 0, sizeof paired);
    const ModelResult *f32 = find_dtype(res, o.n_models, DTYPE_F32), *q8 = find_dtype(res, o.n_models, DTYPE_Q8_0);
    if (f32) {
        paired.f32_bytes = f32->file_bytes;
        if (!paired_rounds(&o, f32->path, PAIR_DECODE, &paired.decode_f32) ||
            !paired_rounds(&o, f32->path, PAIR_PREFILL, &paired.prefill_f32))
            return 1;
    }
    if (q8) {
        paired.q8_bytes = q8->file_bytes;
        if (!paired_rounds(&o, q8->path, PAIR_DECODE, &paired.decode_q8)) return 1;
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
            printf("| gpt2 %-11s | %17.1f | %19.1f | %7.2fx | %-11s |\n", dtype_label(br[i].dtype), br[i].batched_tps,
                   br[i].single_tps, br[i].batched_tps / br[i].single_tps, br[i].identical ? "yes" : "NO");
        printf("\n");
    }

    if (o.e2e) {
        for (int i = 0; i < o.n_models; i++) {
            /* Best of three: the load is a few milliseconds of a noisy machine. */
            ModelResult best = res[i];
            best.load_ms = INFINITY;
            for (int rep = 0; rep < 3; rep++) {
                ModelResult one = res[i];
                if (!e2e_run(&o, &one)) return 1;
                if (one.load_ms < best.load_ms) best.load_ms = one.load_ms;
                if (rep == 0 || one.e2e_s < best.e2e_s) best.e2e_s = one.e2e_s;
                if (one.rss_bytes > best.rss_bytes) best.rss_bytes = one.rss_bytes;
            }
            res[i] = best;
        }
        print_fresh_runs(res, o.n_models, o.max_threads);
    }
    /* Again at the end, to show how far the machine moved meanwhile. */
    if (!measure_limits(&o, &lim, "at the end")) return 1;
    print_acceptance(&o, &paired, res, o.n_models, br, n_br);
    return 0;
}
