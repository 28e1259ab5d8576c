/* runs.c - the measurements of gpt2-bench (bench.h). */
#include "bench.h"

extern char **environ;

/* ---- statistics ------------------------------------------------------------ */

Stat bench_stat_of(const double *x, int n) {
    Stat s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += x[i];
    s.mean /= n;
    for (int i = 0; i < n && n > 1; i++) s.sd += (x[i] - s.mean) * (x[i] - s.mean);
    if (n > 1) s.sd = sqrt(s.sd / (n - 1));
    return s;
}

/* ---- the model tests --------------------------------------------------------- */

uint64_t bench_params_of(const ModelConfig *c) {
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
double bench_prefill_flops(const ModelConfig *c, int n) {
    const double C = c->n_embd, L = c->n_layer, N = n;
    return N * 24 * C * C * L + 4 * C * L * N * (N + 1) / 2 + 2 * C * c->n_vocab;
}

/* FLOPs of the matrix products that generating one token costs in a
 * batch of decoding steps: 24 C^2 L for the layers and 2 C V for the
 * output head (attention, which grows with the position, not counted).
 * For GPT-2 124M this is 247.1 MFLOP. */
double bench_token_flops(const ModelConfig *c) {
    const double C = c->n_embd;
    return 24 * C * C * c->n_layer + 2 * C * c->n_vocab;
}

/* Cache bytes one sequence fills over the whole context (transformer.h). */
double bench_kv_cache_bytes(const ModelConfig *c) {
    double n_ctx16 = (c->n_ctx + 15) / 16 * 16;
    return (double)c->n_layer * (n_ctx16 + c->n_ctx) * c->n_embd * sizeof(float);
}

/* Key and value bytes a decoding step reads, on average over the n steps
 * from position depth: the step at position p reads p + 1 values and the
 * p + 1 keys rounded up to whole blocks of 16 (transformer.h), of every
 * layer. */
double bench_kv_read_bytes(const ModelConfig *c, int depth, int n) {
    double sum = 0;
    for (int p = depth; p < depth + n; p++) sum += (double)((p + 16) / 16 * 16) + (double)(p + 1);
    return sum / n * c->n_layer * c->n_embd * sizeof(float);
}

const char *bench_dtype_label(DType t) {
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

/* Evaluates tokens[0..depth) untimed, as one batch, then times
 * tokens[depth..depth+n) as one batch (prefill) or one at a time (decode).
 * Returns the milliseconds those took, or -1. */
static double run_tokens_at(Runner *r, int depth, int n, bool one_by_one) {
    char err[256];
    gpt2_transformer_reset(&r->tf, 0);
    Batch pre = {(size_t)depth, r->tokens, r->pos, r->seq, NULL};
    if (depth > 0 && !gpt2_transformer_forward(&r->tf, &pre, r->logits, err, sizeof err)) {
        fprintf(stderr, "gpt2-bench: %s\n", err);
        return -1;
    }
    double t0 = now_ms();
    size_t step = one_by_one ? 1 : (size_t)n;
    for (size_t i = (size_t)depth; i < (size_t)depth + (size_t)n; i += step) {
        Batch b = {step, r->tokens + i, r->pos + i, r->seq, NULL};
        if (!gpt2_transformer_forward(&r->tf, &b, r->logits, err, sizeof err)) {
            fprintf(stderr, "gpt2-bench: %s\n", err);
            return -1;
        }
    }
    return now_ms() - t0;
}

/* Evaluates tokens[0..n) from an empty context as one batch (prefill) or
 * one at a time (decode). Returns the milliseconds it took, or -1. */
static double run_tokens(Runner *r, int n, bool one_by_one) { return run_tokens_at(r, 0, n, one_by_one); }

void bench_print_table_head(void) {
    printf("| model            |       size |     params | kernels  | threads |  test |                  t/s |\n");
    printf("| ---------------- | ---------: | ---------: | -------- | ------: | ----: | -------------------: |\n");
}

static void print_row(const ModelResult *m, const char *kernels, int threads, const char *test, Stat s) {
    char name[64];
    snprintf(name, sizeof name, "gpt2 %.0fM %s", (double)bench_params_of(&m->config) / 1e6,
             bench_dtype_label(m->dtype));
    printf("| %-16s | %6.2f MiB | %8.2f M | %-8s | %7d | %5s | %10.2f ± %7.2f |\n", name,
           (double)m->file_bytes / (1 << 20), (double)bench_params_of(&m->config) / 1e6, kernels, threads, test, s.mean,
           s.sd);
    fflush(stdout);
}

/* FilePmdMapped over Rss of the mapping that holds addr, from
 * /proc/self/smaps (Linux); -1 where either is missing. */
static double huge_mapped_share(const void *addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    bool inside = false;
    double rss = -1, pmd = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line; its fields follow */
            inside = lo <= (uintptr_t)addr && (uintptr_t)addr < hi;
        } else if (inside) {
            if (sscanf(line, "Rss: %lu kB", &kb) == 1) rss = (double)kb;
            if (sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) pmd = (double)kb;
        }
    }
    fclose(f);
    return rss > 0 && pmd >= 0 ? pmd / rss : -1;
}

/* pp and tg of one model at every thread count. */
bool bench_model(const Options *o, ModelResult *res) {
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
        r.tf.stream = o->stream;
        /* A warm-up of each: the weights' pages mapped, the caches touched. */
        ok = run_tokens(&r, o->n_prompt, false) >= 0 && run_tokens(&r, o->n_gen, true) >= 0;
        for (int i = 0; ok && i < o->reps; i++) {
            double ms = run_tokens(&r, o->n_prompt, false);
            ok = ms > 0;
            times[i] = o->n_prompt / (ms / 1e3);
        }
        if (ok) res->pp[ti] = bench_stat_of(times, o->reps);
        if (ok) print_row(res, k->name, o->threads[ti], pp_name, res->pp[ti]);
        for (int i = 0; ok && i < o->reps; i++) {
            double ms = run_tokens(&r, o->n_gen, true);
            ok = ms > 0;
            times[i] = o->n_gen / (ms / 1e3);
        }
        if (ok) res->tg[ti] = bench_stat_of(times, o->reps);
        if (ok) print_row(res, k->name, o->threads[ti], tg_name, res->tg[ti]);
        gpt2_transformer_free(&r.tf);
    }
    res->huge_share = model.mapped ? huge_mapped_share(model.bytes) : -1;
    free(times);
    free(r.tokens);
    free(r.pos);
    free(r.seq);
    free(r.logits);
    gpt2_model_close(&model);
    return ok;
}

/* ---- paired rounds: throughput against the limit measured around it ------- */

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
    if (c->kind == PAIR_DECODE) return bench_read_bandwidth(c->r->tf.pool, c->isa, c->buf);
    return bench_fma_peak(c->r->tf.pool, c->isa);
}

/* Rounds of one test of one model at the largest thread count. */
bool bench_paired_rounds(const Options *o, const char *path, PairKind kind, Paired *out) {
    Model model;
    char err[512] = "out of memory"; /* what the allocations below fail with */
    if (!gpt2_model_open(&model, path, err, sizeof err)) {
        fprintf(stderr, "gpt2-bench: %s: %s\n", path, err);
        return false;
    }
    const KernelSet *k = gpt2_kernels_select(o->kernels);
    const int n = kind == PAIR_DECODE ? o->n_gen : o->n_prompt;
    const int depth = kind == PAIR_DECODE ? o->depth : 0, total = depth + n;
    if ((uint32_t)total > model.config.n_ctx) {
        fprintf(stderr, "gpt2-bench: --depth %d and %d tokens go past the context of %u positions\n", depth, n,
                model.config.n_ctx);
        gpt2_model_close(&model);
        return false;
    }
    Runner r = {0};
    r.tokens = malloc((size_t)total * sizeof *r.tokens);
    r.pos = malloc((size_t)total * sizeof *r.pos);
    r.seq = calloc((size_t)total, sizeof *r.seq);
    r.logits = malloc(model.config.n_vocab * sizeof *r.logits);
    double *ratio = malloc((size_t)o->reps * sizeof *ratio), *tps = malloc((size_t)o->reps * sizeof *tps);
    double *limit = malloc((size_t)o->reps * sizeof *limit);
    float *buf = NULL;
    bool ok = r.tokens && r.pos && r.seq && r.logits && ratio && tps && limit &&
              (kind != PAIR_DECODE || (buf = bench_bandwidth_buffer_new()) != NULL);
    ok = ok &&
         gpt2_transformer_build(&r.tf, &model, k, 1, (size_t)(n > depth ? n : depth), o->max_threads, err, sizeof err);
    if (ok) {
        r.tf.stream = o->stream;
        random_tokens(r.tokens, (size_t)total, model.config.n_vocab, 42);
        for (int i = 0; i < total; i++) r.pos[i] = (uint32_t)i;
        PairCtx c = {kind, &r, bench_isa_of(k->name), buf};
        const double work = kind == PAIR_DECODE ? (double)model.n_bytes + bench_kv_read_bytes(&model.config, depth, n)
                                                : bench_prefill_flops(&model.config, n) / n;
        out->work = work;
        ok = run_tokens_at(&r, depth, n, kind == PAIR_DECODE) > 0; /* warm-up */
        double before = ok ? pair_limit(&c) : 0;
        for (int i = 0; ok && i < o->reps; i++) {
            double ms = run_tokens_at(&r, depth, n, kind == PAIR_DECODE), after = pair_limit(&c);
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

/* Runs the completions c[0..n): with `together`, all on one Gpt2 with
 * n_batch n, as one `gpt2 --batch` does; otherwise each on a Gpt2 of its
 * own, opened and closed around it, as n separate runs of gpt2 do.  Returns
 * the seconds it took, opening and closing included, or -1. */
static double run_completions(const Options *o, const char *path, bool together, Gpt2Completion *c, size_t n) {
    char err[512];
    Gpt2Options opt = {.n_threads = o->max_threads,
                       .n_batch = together ? (uint32_t)n : 1,
                       .kernels = o->kernels,
                       .prefetch = o->prefetch};
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
bool bench_batch(const Options *o, const ModelResult *m, BatchResult *res) {
    res->dtype = m->dtype;
    res->config = m->config;
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
int bench_e2e_child(const char *path, int threads) {
    double t0 = now_ms();
    char err[512];
    Gpt2Options opt = {
        .n_threads = threads, .n_batch = 1, .kernels = getenv("GPT2_KERNELS"), .prefetch = getenv("GPT2_PREFETCH")};
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
    const double first_ms = c.prompt_ms, step_ms = n_tokens > 1 ? c.gen_ms / (double)(n_tokens - 1) : 0;
    gpt2_completion_free(&c);
    free(ids);
    gpt2_close(g);
    double total_ms = now_ms() - t0;
    if (!ok) return 1;
    printf("load_ms %.3f total_ms %.3f prompt %zu tokens %zu maxrss_kib %ld first_ms %.3f step_ms %.3f\n", load_ms,
           total_ms, n_ids, n_tokens, peak_rss_kib(), first_ms, step_ms);
    return 0;
}

/* Runs e2e_child in a fresh process (this executable again) and reads its
 * line.  e2e_s is the child's whole life, from spawn to exit. */
bool bench_e2e_run(const Options *o, ModelResult *m) {
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
    double load_ms, total_ms, first_ms, step_ms;
    size_t n_prompt, n_tokens;
    long rss_kib;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(line, "load_ms %lf total_ms %lf prompt %zu tokens %zu maxrss_kib %ld first_ms %lf step_ms %lf", &load_ms,
               &total_ms, &n_prompt, &n_tokens, &rss_kib, &first_ms, &step_ms) != 7) {
        fprintf(stderr, "gpt2-bench: the end-to-end run of %s failed\n", m->path);
        return false;
    }
    m->load_ms = load_ms;
    m->rss_bytes = (double)rss_kib * 1024;
    m->first_ms = first_ms;
    m->step_ms = step_ms;
    m->first_steps = step_ms > 0 ? first_ms / step_ms : 0;
    return true;
}
