/* qp_progress.h - how long library operations report progress and notice
 * cancellation without printing or touching globals: the caller passes a
 * callback and a flag (the CLI sets the flag from its SIGINT/SIGTERM handler). */
#ifndef QP_PROGRESS_H
#define QP_PROGRESS_H

#include <signal.h>
#include <stdint.h>

/* `done` and `total` are in the operation's own unit (bytes, tokens, chunks);
 * `what` names the current item (tensor name, chunk) and may be NULL.
 * Called from the thread that drives the operation, never concurrently. */
typedef void (*qp_progress_fn)(void *user, uint64_t done, uint64_t total, const char *what);

typedef struct {
    qp_progress_fn fn;            /* NULL: no reporting */
    void *user;
    volatile sig_atomic_t *cancel; /* NULL: not cancellable; non-zero: stop with QP_ERR_INTERRUPTED */
} qp_progress;

static inline int qp_cancelled(const qp_progress *p)
{
    return p && p->cancel && *p->cancel;
}

static inline void qp_report(const qp_progress *p, uint64_t done, uint64_t total, const char *what)
{
    if (p && p->fn)
        p->fn(p->user, done, total, what);
}

#endif
