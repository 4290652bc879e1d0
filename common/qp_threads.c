/* qp_threads.c - qp_parallel_for: static range split, one pthread per range. */
#include "common/qp_threads.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    qp_range_fn fn;
    void *ctx;
    int64_t begin, end;
    int tid;
} range_job;

static void *run_range(void *arg)
{
    range_job *j = arg;
    j->fn(j->ctx, j->begin, j->end, j->tid);
    return NULL;
}

int qp_parallel_for(int n_threads, int64_t n_items, qp_range_fn fn, void *ctx)
{
    if (n_items <= 0)
        return 0;
    if (n_threads > n_items)
        n_threads = (int)n_items;
    if (n_threads <= 1) {
        fn(ctx, 0, n_items, 0);
        return 0;
    }
    range_job *jobs = calloc((size_t)n_threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)n_threads, sizeof *tids);
    if (!jobs || !tids) {
        free(jobs);
        free(tids);
        fn(ctx, 0, n_items, 0);
        return -1;
    }
    int started = 0, rc = 0;
    for (int t = 0; t < n_threads; t++) {
        jobs[t].fn = fn;
        jobs[t].ctx = ctx;
        jobs[t].begin = n_items * t / n_threads;
        jobs[t].end = n_items * (t + 1) / n_threads;
        jobs[t].tid = t;
    }
    /* Thread 0's range runs on the calling thread. */
    for (int t = 1; t < n_threads; t++) {
        if (pthread_create(&tids[t], NULL, run_range, &jobs[t]) != 0)
            break;
        started = t;
    }
    run_range(&jobs[0]);
    for (int t = 1; t <= started; t++)
        pthread_join(tids[t], NULL);
    for (int t = started + 1; t < n_threads; t++) { /* could not start: do it here */
        run_range(&jobs[t]);
        rc = -1;
    }
    free(jobs);
    free(tids);
    return rc;
}

int qp_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
