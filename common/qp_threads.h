/* qp_threads.h - a minimal parallel-for over pthreads.
 *
 * qp_parallel_for(n_threads, n_items, fn, ctx) calls fn(ctx, begin, end, tid)
 * on disjoint contiguous ranges covering [0, n_items). Work is split into
 * fixed ranges by item index, never by timing, so results that depend only on
 * each item are identical for any thread count. n_threads <= 1 runs inline. */
#ifndef QP_THREADS_H
#define QP_THREADS_H

#include <stdint.h>

typedef void (*qp_range_fn)(void *ctx, int64_t begin, int64_t end, int tid);

/* Returns 0 on success, -1 if threads could not be created (then the work
 * has been done inline instead, so the caller still gets its result). */
int qp_parallel_for(int n_threads, int64_t n_items, qp_range_fn fn, void *ctx);

/* Number of online CPUs (>= 1). */
int qp_cpu_count(void);

#endif
