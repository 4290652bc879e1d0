/* qp_error.c - filling and formatting qp_err records. */
#include "common/qp_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void qp_err_clear(qp_err *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
    err->offset = -1;
}

static void set_common(qp_err *err, qp_status status, const char *path)
{
    err->status = status;
    err->sys_errno = 0;
    err->offset = -1;
    err->tensor[0] = '\0';
    if (path)
        snprintf(err->path, sizeof err->path, "%s", path);
    else
        err->path[0] = '\0';
}

qp_status qp_err_set(qp_err *err, qp_status status, const char *path, const char *fmt, ...)
{
    if (!err)
        return status;
    set_common(err, status, path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

qp_status qp_err_io(qp_err *err, const char *path, int errno_value, const char *fmt, ...)
{
    if (!err)
        return QP_ERR_IO;
    set_common(err, QP_ERR_IO, path);
    err->sys_errno = errno_value;
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(err->msg, sizeof err->msg, "%s: %s", what, strerror(errno_value));
    return QP_ERR_IO;
}

void qp_err_set_tensor(qp_err *err, const char *tensor)
{
    if (err && tensor)
        snprintf(err->tensor, sizeof err->tensor, "%s", tensor);
}

void qp_err_set_offset(qp_err *err, int64_t offset)
{
    if (err)
        err->offset = offset;
}

void qp_err_set_path(qp_err *err, const char *path)
{
    if (err && path && err->path[0] == '\0')
        snprintf(err->path, sizeof err->path, "%s", path);
}

void qp_err_format(const qp_err *err, char *buf, size_t size)
{
    if (!buf || size == 0)
        return;
    if (!err) {
        snprintf(buf, size, "unknown error");
        return;
    }
    size_t n = 0;
    int w;
    if (err->path[0]) {
        w = snprintf(buf, size, "%s: ", err->path);
        n = w > 0 ? (size_t)w : 0;
    }
    if (n < size) {
        w = snprintf(buf + n, size - n, "%s", err->msg[0] ? err->msg : qp_status_name(err->status));
        n += w > 0 ? (size_t)w : 0;
    }
    int has_off = err->offset >= 0, has_t = err->tensor[0] != '\0';
    if (n < size && (has_off || has_t)) {
        if (has_off && has_t)
            snprintf(buf + n, size - n, " (offset %lld, tensor %s)", (long long)err->offset, err->tensor);
        else if (has_off)
            snprintf(buf + n, size - n, " (offset %lld)", (long long)err->offset);
        else
            snprintf(buf + n, size - n, " (tensor %s)", err->tensor);
    }
}

const char *qp_status_name(qp_status status)
{
    switch (status) {
    case QP_OK: return "ok";
    case QP_ERR_BAD_INPUT: return "bad input";
    case QP_ERR_IO: return "I/O error";
    case QP_ERR_NOMEM: return "out of memory";
    case QP_ERR_UNSUPPORTED: return "unsupported";
    case QP_ERR_USAGE: return "usage error";
    case QP_ERR_INTERRUPTED: return "interrupted";
    case QP_ERR_INTERNAL: return "internal error";
    case QP_ERR_NOT_FOUND: return "not found";
    }
    return "unknown status";
}

int qp_status_exit_code(qp_status status)
{
    switch (status) {
    case QP_OK: return 0;
    case QP_ERR_BAD_INPUT:
    case QP_ERR_USAGE:
    case QP_ERR_UNSUPPORTED:
    case QP_ERR_NOT_FOUND: return 2;
    case QP_ERR_INTERRUPTED: return 130;
    default: return 1;
    }
}
