/* bench.h - the pieces of gpt2-bench, which measures the engine's
 * throughput against this machine's own limits in the same run (main.c
 * says what it reports):
 *
 *   limits.c  the machine: read bandwidth and FP32 FMA peak
 *   runs.c    the measurements: prefill and decode per model and thread
 *             count, paired rounds against the limits, batching, and
 *             fresh-process runs (load time, end to end, peak RSS)
 *   report.c  the acceptance table and the fresh-process table
 *   main.c    the options, and the order of it all
 */
#ifndef GPT2_BENCH_H
#define GPT2_BENCH_H
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

#include "cpus.h"
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

#define MAX_THREAD_COUNTS 8
#define MAX_MODELS 8
#define BW_BYTES ((size_t)1 << 30) /* far beyond any L3 */
#define BW_PASSES 3                /* per read pattern */
#define FMA_ITERS 4000000L
#define FMA_PASSES 5
#define E2E_PROMPT "The quick brown fox jumps" /* 5 GPT-2 tokens */
#define E2E_TOKENS 50
#define E2E_RUNS 5 /* fresh-process runs of each model */
#define BATCH_ROUNDS 3
#define DASHES "--------------------------------------------------------------------------------"

typedef struct {
    int threads[MAX_THREAD_COUNTS];
    int n_threads;   /* entries of threads */
    int max_threads; /* the largest: the acceptance figures use it */
    int n_prompt, n_gen, reps;
    int depth; /* positions before the paired decode rounds' first token */
    int batch, batch_tokens;
    char batch_dtypes[64];
    bool e2e;
    const char *models[MAX_MODELS];
    int n_models;
    const char *self;     /* this executable, for the fresh-process runs */
    const char *kernels;  /* GPT2_KERNELS, or NULL: the best this CPU runs */
    const char *prefetch; /* GPT2_PREFETCH, or NULL: this CPU's hints */
    StreamHints stream;   /* the hints it names */
} Options;

typedef struct {
    double mean, sd;
} Stat;

/* Which vector width the limits are measured with: the one the engine's
 * kernels use, so that the limits are those the kernels could reach. */
typedef enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512 } Isa;

typedef struct {
    double bandwidth[MAX_THREAD_COUNTS]; /* bytes/s, per entry of Options.threads */
    double fma[MAX_THREAD_COUNTS];       /* FLOP/s */
    Isa isa;
} Limits;

typedef struct {
    const char *path;
    DType dtype;
    ModelConfig config;
    uint64_t file_bytes;
    Stat pp[MAX_THREAD_COUNTS], tg[MAX_THREAD_COUNTS]; /* tokens/s */
    double load_ms, e2e_s, rss_bytes;                  /* from the fresh process; < 0: not run */
    /* Also from it: the first token of the 5-token prompt (the prompt's
     * pass and the first sample) and the mean decoding step after it, ms;
     * first_steps is first_ms / step_ms, the median over the runs. */
    double first_ms, step_ms, first_steps;
    /* The share of the mapped file that the kernel maps in 2 MiB pages
     * after the throughput runs (< 0: not known here).  A file the page
     * cache holds in 4 KiB folios, as after a copy with cp or a partial
     * eviction, is mapped in 4 KiB pages, which moves the decode figures
     * (README, "The page cache's folios"). */
    double huge_share;
} ModelResult;

/* The machine's bandwidth moves by half or more from one minute to the
 * next (its neighbours), so a ratio is only meaningful between figures
 * taken together.  A round measures the limit, runs the test, and
 * measures the limit again; its ratio is against the higher of the two. */
typedef enum { PAIR_DECODE, PAIR_PREFILL } PairKind;

typedef struct {
    double median, lo, hi; /* ratio to the limit over the rounds */
    double tps, limit;     /* tokens/s and limit of the median round */
    double work;           /* bytes (decode) or FLOP (prefill) per token */
    bool ran;
} Paired;

typedef struct {
    DType dtype;
    ModelConfig config;             /* the model's shape */
    double batched_tps, single_tps; /* generated tokens per second, all completions together */
    bool identical;                 /* every completion gave the same tokens both ways */
    bool ran;
} BatchResult;

/* The three ratios come from the paired rounds. */
typedef struct {
    Paired decode_f32, decode_q8, prefill_f32;
    uint64_t f32_bytes, q8_bytes;
} PairedSet;

/* runs.c */
Stat bench_stat_of(const double *x, int n);

/* limits.c */
Isa bench_isa_of(const char *kernel_set);
const char *bench_isa_name(Isa isa);
float *bench_bandwidth_buffer_new(void);
double bench_read_bandwidth(ThreadPool *pool, Isa isa, const float *buf);
double bench_fma_peak(ThreadPool *pool, Isa isa);
bool bench_measure_limits(const Options *o, Limits *lim, const char *when);
/* The bytes of the last-level cache, or 0 when unknown. */
double bench_llc_bytes(void);

/* runs.c */
uint64_t bench_params_of(const ModelConfig *c);
double bench_kv_cache_bytes(const ModelConfig *c);
const char *bench_dtype_label(DType t);
void bench_print_table_head(void);
bool bench_model(const Options *o, ModelResult *res);
bool bench_paired_rounds(const Options *o, const char *path, PairKind kind, Paired *out);
bool bench_batch(const Options *o, const ModelResult *m, BatchResult *res);
int bench_e2e_child(const char *path, int threads);
bool bench_e2e_run(const Options *o, ModelResult *m);
double bench_kv_read_bytes(const ModelConfig *c, int depth, int n);
double bench_prefill_flops(const ModelConfig *c, int n);
double bench_token_flops(const ModelConfig *c);

/* report.c */
const ModelResult *bench_find_dtype(const ModelResult *m, int n, DType t);
void bench_print_acceptance(const Options *o, const PairedSet *ps, const ModelResult *m, int n_models,
                            const BatchResult *br, int n_br, double fma_peak);
void bench_print_fresh_runs(const ModelResult *m, int n_models, int threads);

#endif
