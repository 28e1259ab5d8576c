/* threadpool.c - see threadpool.h.
 *
 * A loop is published by bumping `generation`.  Workers watch it, spinning
 * for a while, then yielding, then sleeping on a condition variable; the
 * publisher only takes the mutex when someone sleeps.  Both sides use
 * sequentially consistent atomics, so either the worker sees the new
 * generation before it sleeps or the publisher sees the sleeper and wakes
 * it.
 *
 * Joining.  `ticket` holds the generation of the loop being run, a CLOSED
 * bit and the number of workers inside it.  A worker enters with a
 * compare-and-swap that fails once the caller has closed the loop (or a
 * newer one has started); the caller closes it when it has no chunk left
 * and then waits only for the workers inside.  So the loop's context, on
 * the caller's stack, is never read after gpt2_threadpool_for returns, and a
 * worker that was asleep or descheduled costs the caller nothing.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_getaffinity and CPU_COUNT, for the CPUs this process may use */
#endif
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000 /* polls before yielding: some 300 us */
#define YIELD_ROUNDS 100  /* sched_yield polls before sleeping */

#define TICKET_CLOSED ((uint64_t)1 << 31)
#define TICKET_COUNT ((uint64_t)TICKET_CLOSED - 1)

struct ThreadPool {
    int n_threads;
    pthread_t *workers; /* [n_threads - 1] */
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint generation; /* bumped once per loop */
    atomic_int sleepers;    /* workers waiting on `wake` */
    atomic_bool stop;
    _Atomic uint64_t ticket; /* generation << 32 | CLOSED | workers inside */
    atomic_int joined;       /* workers that entered this loop */
    atomic_size_t next;      /* first item not yet claimed */
    /* The loop, written before it is published. */
    size_t n, grain;
    PoolTask task; /* NULL: run `job` once per thread */
    PoolJob job;
    void *ctx;
};

typedef struct {
    ThreadPool *pool;
    int index;
} WorkerArg;

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until `generation` differs from seen and returns it. */
static unsigned wait_for_generation(ThreadPool *p, unsigned seen) {
    unsigned g;
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if ((g = atomic_load(&p->generation)) != seen) return g;
        cpu_relax();
    }
    /* The machine may be busy: let whatever waits for this CPU run. */
    for (int i = 0; i < YIELD_ROUNDS; i++) {
        if ((g = atomic_load(&p->generation)) != seen) return g;
        sched_yield();
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->sleepers, 1);
    while ((g = atomic_load(&p->generation)) == seen) pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mutex);
    return g;
}

/* Enters loop `gen` unless it is closed or over. */
static bool join(ThreadPool *p, unsigned gen) {
    uint64_t t = atomic_load(&p->ticket);
    do {
        if ((unsigned)(t >> 32) != gen || (t & TICKET_CLOSED)) return false;
    } while (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1));
    atomic_fetch_add(&p->joined, 1);
    return true;
}

static void leave(ThreadPool *p) {
    uint64_t t = atomic_fetch_sub(&p->ticket, 1);
    if ((t & TICKET_COUNT) == 1 && (t & TICKET_CLOSED)) { /* the caller may be asleep */
        pthread_mutex_lock(&p->mutex);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mutex);
    }
}

/* Claims the next chunk: an even share of what is left among twice the
 * threads, rounded up to the grain, so chunks shrink towards the end. */
static bool claim(ThreadPool *p, size_t *begin, size_t *end) {
    size_t b = atomic_load(&p->next);
    for (;;) {
        if (b >= p->n) return false;
        size_t left = p->n - b, size = left / (2 * (size_t)p->n_threads);
        size = (size + p->grain - 1) / p->grain * p->grain;
        if (size < p->grain) size = p->grain;
        if (size > left) size = left;
        if (atomic_compare_exchange_weak(&p->next, &b, b + size)) {
            *begin = b;
            *end = b + size;
            return true;
        }
    }
}

static void work(ThreadPool *p, int index) {
    if (!p->task) {
        p->job(p->ctx, index, p->n_threads);
        return;
    }
    size_t begin, end;
    while (claim(p, &begin, &end)) p->task(p->ctx, begin, end, index);
}

static void *worker_main(void *arg) {
    WorkerArg *w = arg;
    ThreadPool *p = w->pool;
    int index = w->index;
    free(w);
    unsigned seen = 0;
    for (;;) {
        seen = wait_for_generation(p, seen);
        if (atomic_load(&p->stop)) return NULL;
        if (!join(p, seen)) continue;
        work(p, index);
        leave(p);
    }
}

static void publish(ThreadPool *p) {
    unsigned gen = atomic_load(&p->generation) + 1;
    atomic_store(&p->joined, 0);
    atomic_store(&p->next, 0);
    atomic_store(&p->ticket, (uint64_t)gen << 32);
    atomic_store(&p->generation, gen);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
}

/* Closes the current loop and waits for the workers inside it. */
static void close_and_wait(ThreadPool *p) {
    atomic_fetch_or(&p->ticket, TICKET_CLOSED);
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if ((atomic_load(&p->ticket) & TICKET_COUNT) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mutex);
    while ((atomic_load(&p->ticket) & TICKET_COUNT) != 0) pthread_cond_wait(&p->done, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}

ThreadPool *gpt2_threadpool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    ThreadPool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n_threads = n_threads;
    p->workers = calloc((size_t)n_threads, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mutex, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n_threads; i++) {
        WorkerArg *arg = malloc(sizeof *arg);
        if (arg) *arg = (WorkerArg){p, i};
        if (!arg || pthread_create(&p->workers[i - 1], NULL, worker_main, arg) != 0) {
            free(arg);
            p->n_threads = i; /* stop the ones already started */
            gpt2_threadpool_free(p);
            return NULL;
        }
    }
    return p;
}

void gpt2_threadpool_free(ThreadPool *p) {
    if (!p) return;
    atomic_store(&p->stop, true);
    publish(p);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->workers[i - 1], NULL);
    pthread_mutex_destroy(&p->mutex);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int gpt2_threadpool_size(const ThreadPool *p) { return p->n_threads; }

void gpt2_threadpool_for(ThreadPool *p, size_t n, size_t grain, PoolTask task, void *ctx) {
    if (grain == 0) grain = 1;
    if (n == 0) return;
    if (p->n_threads == 1 || n <= grain) {
        task(ctx, 0, n, 0);
        return;
    }
    p->n = n;
    p->grain = grain;
    p->task = task;
    p->job = NULL;
    p->ctx = ctx;
    publish(p);
    work(p, 0);
    close_and_wait(p);
}

void gpt2_threadpool_run(ThreadPool *p, PoolJob job, void *ctx) {
    if (p->n_threads == 1) {
        job(ctx, 0, 1);
        return;
    }
    p->task = NULL;
    p->job = job;
    p->ctx = ctx;
    publish(p);
    job(ctx, 0, p->n_threads);
    /* Every worker must take part: keep the loop open until all are in. */
    while (atomic_load(&p->joined) < p->n_threads - 1) sched_yield();
    close_and_wait(p);
}

int gpt2_threadpool_cpu_count(void) {
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
