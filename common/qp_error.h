/* qp_error.h - status codes and the caller-owned error record.
 *
 * Every fallible library call returns a qp_status and, on failure, fills a
 * qp_err that the caller owns: which file, which tensor, which byte offset,
 * and a one-line cause. The library never prints or exits; the CLI turns a
 * qp_err into one line "qpack: <file>: <cause> (offset N, tensor T)" and an
 * exit code from qp_status_exit_code().
 *
 * The numeric values of qp_status are frozen: add new codes at the end. */
#ifndef QP_ERROR_H
#define QP_ERROR_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    QP_OK = 0,
    QP_ERR_BAD_INPUT = 1,   /* malformed or hostile file, wrong shapes, bad config */
    QP_ERR_IO = 2,          /* read/write/open failure (errno-based) */
    QP_ERR_NOMEM = 3,       /* allocation failed */
    QP_ERR_UNSUPPORTED = 4, /* well-formed but not something we handle */
    QP_ERR_USAGE = 5,       /* bad arguments from the caller */
    QP_ERR_INTERRUPTED = 6, /* SIGINT/SIGTERM observed */
    QP_ERR_INTERNAL = 7,    /* a bug: an invariant did not hold */
    QP_ERR_NOT_FOUND = 8,   /* a named key/tensor/file does not exist */
} qp_status;

typedef struct {
    qp_status status;
    int sys_errno;         /* errno for QP_ERR_IO, else 0 */
    int64_t offset;        /* byte offset in `path` where it went wrong, -1 if none */
    char path[1024];       /* file the problem is in ("" if none) */
    char tensor[256];      /* tensor or key involved ("" if none) */
    char msg[512];         /* the cause, one line, no trailing newline */
} qp_err;

/* Reset to "no error". Accepts NULL. */
void qp_err_clear(qp_err *err);

/* Record a failure and return `status`, so callers can write
 *     return qp_err_set(err, QP_ERR_BAD_INPUT, path, "header length %llu past end", n);
 * `err` may be NULL (then only the status is returned). path may be NULL. */
qp_status qp_err_set(qp_err *err, qp_status status, const char *path,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Like qp_err_set with status QP_ERR_IO; appends strerror(errno_value). */
qp_status qp_err_io(qp_err *err, const char *path, int errno_value,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Attach context to an already-set error (no-op on NULL). */
void qp_err_set_tensor(qp_err *err, const char *tensor);
void qp_err_set_offset(qp_err *err, int64_t offset);
void qp_err_set_path(qp_err *err, const char *path); /* only if path is empty */

/* "path: msg (offset N, tensor T)" without the "qpack: " prefix. */
void qp_err_format(const qp_err *err, char *buf, size_t size);

const char *qp_status_name(qp_status status);

/* Documented CLI exit codes: 0 ok, 1 internal/IO/nomem, 2 bad input or usage,
 * 130 interrupted (the CLI uses 143 itself for SIGTERM). */
int qp_status_exit_code(qp_status status);

#endif
