/* threadpool.c - see threadpool.h.
 *
 * A job is published by bumping `generation`.  Workers watch it, spinning
 * for a while and then sleeping on a condition variable; the publisher only
 * takes the mutex when someone sleeps.  Both sides use sequentially
 * consistent atomics, so either the worker sees the new generation before
 * it sleeps or the publisher sees the sleeper and wakes it.
 */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000 /* polls before a worker sleeps: some 100 us */

struct ThreadPool {
    int n_threads;
    pthread_t *workers; /* [n_threads - 1] */
    pthread_mutex_t mutex;
    pthread_cond_t wake;
    pthread_cond_t done;
    atomic_uint generation; /* bumped once per job */
    atomic_int sleepers;    /* workers waiting on `wake` */
    atomic_int pending;     /* workers still running the current job */
    atomic_bool stop;
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

static void wait_for_generation(ThreadPool *p, unsigned seen) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (atomic_load(&p->generation) != seen) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mutex);
    atomic_fetch_add(&p->sleepers, 1);
    while (atomic_load(&p->generation) == seen) pthread_cond_wait(&p->wake, &p->mutex);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mutex);
}

static void *worker_main(void *arg) {
    WorkerArg *w = arg;
    ThreadPool *p = w->pool;
    int index = w->index;
    free(w);
    unsigned seen = 0;
    for (;;) {
        wait_for_generation(p, seen);
        seen = atomic_load(&p->generation);
        if (atomic_load(&p->stop)) return NULL;
        p->job(p->ctx, index, p->n_threads);
        if (atomic_fetch_sub(&p->pending, 1) == 1) {
            pthread_mutex_lock(&p->mutex);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mutex);
        }
    }
}

static void publish(ThreadPool *p) {
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mutex);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mutex);
    }
}

ThreadPool *threadpool_create(int n_threads) {
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
            threadpool_free(p);
            return NULL;
        }
    }
    return p;
}

void threadpool_free(ThreadPool *p) {
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

int threadpool_size(const ThreadPool *p) { return p->n_threads; }

void threadpool_run(ThreadPool *p, PoolJob job, void *ctx) {
    if (p->n_threads == 1) {
        job(ctx, 0, 1);
        return;
    }
    p->job = job;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n_threads - 1);
    publish(p);
    job(ctx, 0, p->n_threads);
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (atomic_load(&p->pending) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mutex);
    while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mutex);
    pthread_mutex_unlock(&p->mutex);
}

int cpu_count(void) {
#if defined(__linux__) && defined(CPU_COUNT)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
