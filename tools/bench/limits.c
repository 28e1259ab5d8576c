/* limits.c - the machine's limits: read bandwidth and FP32 FMA peak (bench.h). */
#include "bench.h"

/* ---- machine limits -------------------------------------------------------- */

Isa bench_isa_of(const char *kernel_set) {
#ifdef BENCH_X86
    if (strcmp(kernel_set, "avx512") == 0) return ISA_AVX512;
    if (strcmp(kernel_set, "avx2") == 0 || strcmp(kernel_set, "avxvnni") == 0) return ISA_AVX2;
#endif
    (void)kernel_set;
    return ISA_SCALAR;
}

const char *bench_isa_name(Isa isa) { return isa == ISA_AVX512 ? "avx512" : isa == ISA_AVX2 ? "avx2" : "scalar"; }

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
float *bench_bandwidth_buffer_new(void) {
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
double bench_read_bandwidth(ThreadPool *pool, Isa isa, const float *buf) {
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

/* The size of the highest level of cache that sysfs lists for CPU 0 (Linux),
 * or 0.  Preferred to sysconf: glibc's figure, derived from CPUID, read 320
 * MiB on a 2-core Zen 4 guest whose sysfs and L3 said 32 MiB. */
static double sysfs_llc_bytes(void) {
    double best = 0;
    int best_level = 0;
    for (int i = 0; i < 16; i++) {
        char path[96], size[32] = "";
        int level = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if (!(f = fopen(path, "r"))) continue;
        if (!fgets(size, sizeof size, f)) size[0] = 0;
        fclose(f);
        char *end;
        double bytes = strtod(size, &end);
        if (*end == 'K') bytes *= 1024;
        else if (*end == 'M') bytes *= 1024 * 1024;
        if (level > best_level && bytes > 0) best = bytes, best_level = level;
    }
    return best;
}

double bench_llc_bytes(void) {
    const double from_sysfs = sysfs_llc_bytes();
    if (from_sysfs > 0) return from_sysfs;
    long bytes = 0;
#if defined(_SC_LEVEL3_CACHE_SIZE)
    bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#if defined(_SC_LEVEL2_CACHE_SIZE)
    if (bytes <= 0) bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    return bytes > 0 ? (double)bytes : 0;
}

/* Best FLOP/s of all threads of pool together over FMA_PASSES passes. */
double bench_fma_peak(ThreadPool *pool, Isa isa) {
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

/* Measures the limits at every thread count; `when` names the moment. */
bool bench_measure_limits(const Options *o, Limits *lim, const char *when) {
    const KernelSet *k = gpt2_kernels_select(o->kernels);
    lim->isa = bench_isa_of(k->name);
    float *buf = bench_bandwidth_buffer_new();
    if (!buf) {
        fprintf(stderr, "gpt2-bench: no memory for the 1 GiB bandwidth buffer\n");
        return false;
    }
    printf("## machine limits, %s (%s instructions)\n\n", when, bench_isa_name(lim->isa));
    printf("| limit                                         | threads |             value |\n");
    printf("| --------------------------------------------- | ------: | ----------------: |\n");
    for (int i = 0; i < o->n_threads; i++) {
        ThreadPool *pool = gpt2_threadpool_create(o->threads[i]);
        if (!pool) {
            free(buf);
            return false;
        }
        lim->bandwidth[i] = bench_read_bandwidth(pool, lim->isa, buf);
        lim->fma[i] = bench_fma_peak(pool, lim->isa);
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
