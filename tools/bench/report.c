/* report.c - the tables gpt2-bench prints at the end (bench.h). */
#include "bench.h"

/* ---- the report ------------------------------------------------------------- */

/* Two models of one shape: the only pairs whose speeds compare. */
static bool same_shape(const ModelConfig *a, const ModelConfig *b) {
    return a->n_layer == b->n_layer && a->n_embd == b->n_embd && a->n_head == b->n_head && a->n_vocab == b->n_vocab &&
           a->n_ctx == b->n_ctx;
}

const ModelResult *bench_find_dtype(const ModelResult *m, int n, DType t) {
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

static void paired_line(const char *what, const Paired *p, double target, const char *target_text) {
    char measured[32], spread[48];
    snprintf(measured, sizeof measured, "%.1f %%", 100 * p->median);
    snprintf(spread, sizeof spread, "%.1f..%.1f %%", 100 * p->lo, 100 * p->hi);
    criterion(what, measured, spread, target_text, 100 * p->median >= target);
}

void bench_print_acceptance(const Options *o, const PairedSet *ps, const ModelResult *m, int n_models,
                            const BatchResult *br, int n_br, double fma_peak) {
    printf("## acceptance (%d threads; a ratio is the median of %d rounds, each against the limit measured\n"
           "## just before and after it, the higher of the two; the rounds' range beside it)\n\n",
           o->max_threads, o->reps);
    printf("| %-72s | %10s | %-13s | %-10s | %-4s |\n", "criterion", "measured", "rounds", "target", "ok");
    printf("| %.72s | %.9s: | %.13s | %.10s | %.4s |\n", DASHES, DASHES, DASHES, DASHES, DASHES);
    char what[160], measured[32], at[32] = "";
    if (o->depth > 0) snprintf(at, sizeof at, " at %d", o->depth);
    if (ps->decode_f32.ran) {
        const Paired *p = &ps->decode_f32;
        snprintf(what, sizeof what, "decode f32 tg%d%s: %.1f tok/s x %.1f MB = %.2f of %.2f GB/s read", o->n_gen, at,
                 p->tps, p->work / 1e6, p->tps * p->work / 1e9, p->limit / 1e9);
        /* Deep in the context a step also reads the keys and values, in
         * n_layer * n_head short slices: 85 % there. */
        paired_line(what, p, o->depth > 0 ? 85 : 90, o->depth > 0 ? ">= 85 %" : ">= 90 %");
    }
    if (ps->decode_q8.ran) {
        const Paired *p = &ps->decode_q8;
        snprintf(what, sizeof what, "decode q8_0 tg%d%s: %.1f tok/s of the bound %.2f GB/s / %.1f MB = %.1f", o->n_gen,
                 at, p->tps, p->limit / 1e9, p->work / 1e6, p->limit / p->work);
        paired_line(what, p, 85, ">= 85 %");
    }
    if (ps->prefill_f32.ran) {
        const Paired *p = &ps->prefill_f32;
        snprintf(what, sizeof what, "prefill f32 pp%d: %.0f tok/s x %.1f MFLOP = %.1f of %.1f GFLOP/s FMA", o->n_prompt,
                 p->tps, p->median * p->limit / p->tps / 1e6, p->median * p->limit / 1e9, p->limit / 1e9);
        paired_line(what, p, 70, ">= 70 %");
    }
    const ModelResult *f32 = bench_find_dtype(m, n_models, DTYPE_F32), *q8 = bench_find_dtype(m, n_models, DTYPE_Q8_0);
    const int top = o->n_threads - 1; /* the throughput table's row at the most threads */
    if (f32 && q8 && same_shape(&f32->config, &q8->config) && f32->pp[top].mean > 0 && q8->pp[top].mean > 0) {
        snprintf(what, sizeof what, "prefill pp%d, q8_0 over f32: %.0f / %.0f tok/s (throughput table)", o->n_prompt,
                 q8->pp[top].mean, f32->pp[top].mean);
        snprintf(measured, sizeof measured, "%.2f x", q8->pp[top].mean / f32->pp[top].mean);
        criterion(what, measured, "", ">= 2 x", q8->pp[top].mean >= 2 * f32->pp[top].mean);
    }
    /* Batches: the f32 aggregate against the FMA peak, q8_0 against f32,
     * and each against separate runs (which the bandwidth and the first
     * token bound, so that line is information). */
    const BatchResult *bf = NULL, *bq = NULL;
    for (int i = 0; i < n_br; i++) {
        if (!br[i].ran) continue;
        if (br[i].dtype == DTYPE_F32 && !bf) bf = &br[i];
        const double speedup = br[i].identical ? br[i].batched_tps / br[i].single_tps : 0;
        snprintf(what, sizeof what, "batch %s %dx%d: %.1f tok/s with n_batch %d, %.1f in separate runs%s",
                 gpt2_dtype_name(br[i].dtype), o->batch, o->batch_tokens, br[i].batched_tps, o->batch, br[i].single_tps,
                 br[i].identical ? "" : " (TOKENS DIFFER)");
        snprintf(measured, sizeof measured, "%.2f x", speedup);
        criterion(what, measured, "", NULL, true);
    }
    if (bf) {
        const double flops = bench_token_flops(&bf->config), rate = bf->batched_tps * flops;
        snprintf(what, sizeof what, "batch f32 %dx%d: %.1f tok/s x %.1f MFLOP = %.1f of %.1f GFLOP/s FMA", o->batch,
                 o->batch_tokens, bf->batched_tps, flops / 1e6, rate / 1e9, fma_peak / 1e9);
        snprintf(measured, sizeof measured, "%.1f %%", 100 * rate / fma_peak);
        criterion(what, measured, "", ">= 60 %", bf->identical && rate >= 0.6 * fma_peak);
    }
    for (int i = 0; bf && i < n_br && !bq; i++)
        if (br[i].ran && br[i].dtype == DTYPE_Q8_0 && same_shape(&bf->config, &br[i].config)) bq = &br[i];
    if (bf && bq) {
        snprintf(what, sizeof what, "batch q8_0 over f32 %dx%d: %.1f / %.1f tok/s", o->batch, o->batch_tokens,
                 bq->batched_tps, bf->batched_tps);
        snprintf(measured, sizeof measured, "%.2f x", bq->batched_tps / bf->batched_tps);
        criterion(what, measured, "", ">= 1.5 x",
                  bf->identical && bq->identical && bq->batched_tps >= 1.5 * bf->batched_tps);
    }
    /* How the kernel mapped each file (ModelResult.huge_share): information
     * that the decode figures above depend on. */
    for (int i = 0; i < n_models; i++) {
        if (m[i].huge_share < 0) continue;
        snprintf(what, sizeof what, "%s file mapped in 2 MiB pages (FilePmdMapped of its Rss)",
                 gpt2_dtype_name(m[i].dtype));
        snprintf(measured, sizeof measured, "%.1f %%", 100 * m[i].huge_share);
        criterion(what, measured, "", NULL, true);
    }
    /* A file the last-level cache holds with room to spare (half of it)
     * need not come from memory at each token: its decode bound, from a
     * read of memory, understates. */
    const double llc = bench_llc_bytes();
    for (int i = 0; i < n_models && llc > 0; i++) {
        if ((double)m[i].file_bytes > llc / 2) continue;
        snprintf(what, sizeof what,
                 "%s file (%.1f MB) under half the %.0f MiB last-level cache: decode may pass 100 %%",
                 gpt2_dtype_name(m[i].dtype), (double)m[i].file_bytes / 1e6, llc / (1 << 20));
        criterion(what, "yes", "", NULL, true);
    }
    for (int i = 0; i < n_models; i++) {
        if (m[i].load_ms < 0 || m[i].step_ms <= 0) continue;
        snprintf(what, sizeof what, "first token %s, 5-token prompt: %.1f ms, decoding steps %.2f ms (median of %d)",
                 gpt2_dtype_name(m[i].dtype), m[i].first_ms, m[i].step_ms, E2E_RUNS);
        snprintf(measured, sizeof measured, "%.2f x", m[i].first_steps);
        criterion(what, measured, "", "<= 2 x", m[i].first_steps <= 2);
    }
    if (f32 && f32->rss_bytes > 0) {
        double limit = (double)f32->file_bytes + bench_kv_cache_bytes(&f32->config) + 64.0 * (1 << 20);
        snprintf(what, sizeof what, "peak RSS f32, %d tokens: file %.1f + KV cache %.1f + 64 MiB = %.1f MiB",
                 E2E_TOKENS, (double)f32->file_bytes / (1 << 20), bench_kv_cache_bytes(&f32->config) / (1 << 20),
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
        criterion(what, measured, "", "<= 1.5x+1ms", max_load <= 1.5 * min_load + 1);
    }
    printf("\n");
}

void bench_print_fresh_runs(const ModelResult *m, int n_models, int threads) {
    printf("## fresh process: open, %d tokens from a 5-token prompt, close (%d threads)\n\n", E2E_TOKENS, threads);
    printf("| model            |       size | load ms | end-to-end s | peak RSS MiB | first token ms | step ms |\n");
    printf("| ---------------- | ---------: | ------: | -----------: | -----------: | -------------: | ------: |\n");
    for (int i = 0; i < n_models; i++) {
        if (m[i].load_ms < 0) continue;
        char name[64];
        snprintf(name, sizeof name, "gpt2 %.0fM %s", (double)bench_params_of(&m[i].config) / 1e6,
                 bench_dtype_label(m[i].dtype));
        printf("| %-16s | %6.2f MiB | %7.2f | %12.3f | %12.1f | %14.2f | %7.2f |\n", name,
               (double)m[i].file_bytes / (1 << 20), m[i].load_ms, m[i].e2e_s, m[i].rss_bytes / (1 << 20), m[i].first_ms,
               m[i].step_ms);
    }
    printf("\n");
}
