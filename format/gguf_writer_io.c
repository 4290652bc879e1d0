/* gguf_writer_io.c - the writer's file side: the temp file, tensor data by
 * pwrite from any thread, streaming or read-back checksums, and the
 * fsync + rename that makes the final file appear only when complete. */
#include "format/gguf_writer_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qp_checked.h"
#include "common/qp_crash_files.h"
#include "common/qp_threads.h"

#define READBACK_CHUNK ((size_t)1 << 20)
#define MAX_READBACK_THREADS 8

/* Write all n bytes at `off`, retrying on EINTR and short writes.
 * Returns 0 or an errno value. */
static int pwrite_all(int fd, const void *data, size_t n, uint64_t off)
{
    const uint8_t *p = data;
    while (n > 0) {
        size_t chunk = n < ((size_t)1 << 30) ? n : ((size_t)1 << 30);
        ssize_t r = pwrite(fd, p, chunk, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int pread_all(int fd, void *data, size_t n, uint64_t off)
{
    uint8_t *p = data;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return EIO; /* the file we sized ourselves is shorter: someone truncated it */
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Close and remove the temp file; the writer cannot be used afterwards. */
static void discard(qp_gguf_writer *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    unlink(w->tmp_path);
    qp_crash_tmp_unregister(w->crash_handle);
    w->crash_handle = -1;
    w->state = QP_GW_DEAD;
}

void qp_gguf_writer_abort(qp_gguf_writer *w)
{
    /* Only a begun writer owns a temp file; never remove one we did not create. */
    if (w && w->state == QP_GW_BEGUN)
        discard(w);
}

qp_status qp_gguf_writer_begin(qp_gguf_writer *w, qp_err *err)
{
    if (!w)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_gguf_writer_begin: no writer");
    if (w->state != QP_GW_DECLARING)
        return qp_err_set(err, QP_ERR_USAGE, w->final_path, "writer already begun");
    qp_gw_buf h = {0};
    qp_status st = qp_gw_build_header(w, &h, err);
    if (st) {
        free(h.p);
        return st;
    }
    w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        free(h.p);
        return qp_err_io(err, w->tmp_path, errno, "cannot create");
    }
    w->state = QP_GW_BEGUN;
    /* A crash (SIGBUS on a truncated input) removes it too: cli/ unlinks
     * registered temp files before exiting. */
    w->crash_handle = qp_crash_tmp_register(w->tmp_path);
    /* Size first so pieces can land anywhere; the holes read back as the
     * zero padding the format wants. */
    int e = ftruncate(w->fd, (off_t)w->file_size) != 0 ? errno : 0;
    if (!e)
        e = pwrite_all(w->fd, h.p, h.len, 0);
    free(h.p);
    if (e) {
        discard(w);
        return qp_err_io(err, w->tmp_path, e, "cannot write GGUF header (%llu bytes)",
                         (unsigned long long)w->file_size);
    }
    return QP_OK;
}

/* Bookkeeping after a piece reached the file; feeds the streaming hash when
 * the piece continues it. Hashing runs outside the lock so different
 * tensors hash in parallel; a tensor whose pieces arrive out of order (or
 * while its hash is busy) falls back to read-back at finish. */
static void account_piece(qp_gguf_writer *w, qp_gw_tensor *t, uint64_t offset,
                          const void *data, size_t n)
{
    int claim = 0;
    pthread_mutex_lock(&w->mu);
    t->written += n;
    if (w->checksums && t->streaming) {
        if (offset == t->hash_next && !t->hashing) {
            if (!t->st)
                t->st = XXH3_createState();
            if (t->st && (offset > 0 || XXH3_64bits_reset(t->st) == XXH_OK)) {
                t->hashing = 1;
                t->hash_next = offset + n;
                claim = 1;
            } else {
                t->streaming = 0;
            }
        } else {
            t->streaming = 0;
        }
    }
    pthread_mutex_unlock(&w->mu);
    if (!claim)
        return;
    int ok = XXH3_64bits_update(t->st, data, n) == XXH_OK;
    pthread_mutex_lock(&w->mu);
    t->hashing = 0;
    if (!ok)
        t->streaming = 0;
    if (t->streaming && t->hash_next == t->nbytes) {
        t->hash = XXH3_64bits_digest(t->st);
        t->hashed = 1;
        XXH3_freeState(t->st);
        t->st = NULL;
    }
    pthread_mutex_unlock(&w->mu);
}

qp_status qp_gguf_write_tensor(qp_gguf_writer *w, int64_t idx, uint64_t offset,
                               const void *data, size_t n, qp_err *err)
{
    if (!w || w->state != QP_GW_BEGUN)
        return qp_err_set(err, QP_ERR_USAGE, w ? w->final_path : NULL,
                          "qp_gguf_write_tensor: writer not begun");
    if (idx < 0 || (size_t)idx >= w->n_tensors)
        return qp_err_set(err, QP_ERR_USAGE, w->final_path, "no tensor number %lld",
                          (long long)idx);
    qp_gw_tensor *t = &w->tensors[idx];
    uint64_t end;
    if (!qp_add_u64(offset, n, &end) || end > t->nbytes || (!data && n)) {
        qp_err_set(err, QP_ERR_USAGE, w->final_path,
                   "tensor '%s': piece [%llu, +%zu) outside its %llu bytes", t->name,
                   (unsigned long long)offset, n, (unsigned long long)t->nbytes);
        qp_err_set_tensor(err, t->name);
        return QP_ERR_USAGE;
    }
    if (n == 0)
        return QP_OK;
    uint64_t at = w->data_off + t->offset + offset;
    int e = pwrite_all(w->fd, data, n, at);
    if (e) {
        pthread_mutex_lock(&w->mu);
        if (!w->write_failed) {
            w->write_failed = 1;
            w->failed_errno = e;
            snprintf(w->failed_tensor, sizeof w->failed_tensor, "%s", t->name);
        }
        t->streaming = 0;
        pthread_mutex_unlock(&w->mu);
        qp_err_io(err, w->tmp_path, e, "cannot write tensor '%s' (%zu bytes)", t->name, n);
        qp_err_set_tensor(err, t->name);
        qp_err_set_offset(err, at > INT64_MAX ? -1 : (int64_t)at);
        return QP_ERR_IO;
    }
    account_piece(w, t, offset, data, n);
    return QP_OK;
}

/* ---------------------------------------------------------------- finish */

typedef struct {
    qp_gguf_writer *w;
    const int64_t *todo; /* tensors to hash from the file */
    int *errs;           /* errno per todo entry */
} readback_job;

static void readback_range(void *ctx, int64_t begin, int64_t end, int tid)
{
    readback_job *job = ctx;
    (void)tid;
    uint8_t *buf = malloc(READBACK_CHUNK);
    XXH3_state_t *st = XXH3_createState();
    for (int64_t k = begin; k < end; k++) {
        qp_gw_tensor *t = &job->w->tensors[job->todo[k]];
        if (!buf || !st || XXH3_64bits_reset(st) != XXH_OK) {
            job->errs[k] = ENOMEM;
            continue;
        }
        uint64_t base = job->w->data_off + t->offset;
        int e = 0;
        for (uint64_t done = 0; done < t->nbytes && !e;) {
            size_t n = t->nbytes - done < READBACK_CHUNK ? (size_t)(t->nbytes - done)
                                                          : READBACK_CHUNK;
            e = pread_all(job->w->fd, buf, n, base + done);
            if (!e && XXH3_64bits_update(st, buf, n) != XXH_OK)
                e = ENOMEM;
            done += n;
        }
        job->errs[k] = e;
        if (!e) {
            t->hash = XXH3_64bits_digest(st);
            t->hashed = 1;
        }
    }
    XXH3_freeState(st);
    free(buf);
}

/* Hash, from the file, every tensor the streaming path could not. */
static qp_status hash_remaining(qp_gguf_writer *w, qp_err *err)
{
    size_t n_todo = 0;
    for (size_t i = 0; i < w->n_tensors; i++)
        n_todo += !w->tensors[i].hashed;
    if (n_todo == 0)
        return QP_OK;
    int64_t *todo = malloc(n_todo * sizeof *todo);
    int *errs = calloc(n_todo, sizeof *errs);
    if (!todo || !errs) {
        free(todo);
        free(errs);
        return qp_err_set(err, QP_ERR_NOMEM, w->tmp_path, "out of memory for checksums");
    }
    n_todo = 0;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (!w->tensors[i].hashed)
            todo[n_todo++] = (int64_t)i;
    int threads = qp_cpu_count();
    if (threads > MAX_READBACK_THREADS)
        threads = MAX_READBACK_THREADS;
    if ((size_t)threads > n_todo)
        threads = (int)n_todo;
    readback_job job = {w, todo, errs};
    qp_parallel_for(threads, (int64_t)n_todo, readback_range, &job);
    qp_status st = QP_OK;
    for (size_t k = 0; k < n_todo && !st; k++) {
        if (errs[k]) {
            const char *name = w->tensors[todo[k]].name;
            st = qp_err_io(err, w->tmp_path, errs[k], "cannot read back tensor '%s' for its "
                           "checksum", name);
            qp_err_set_tensor(err, name);
        }
    }
    free(todo);
    free(errs);
    return st;
}

static qp_status write_checksums(qp_gguf_writer *w, qp_err *err)
{
    qp_status st = hash_remaining(w, err);
    if (st)
        return st;
    qp_gw_buf b = {0};
    for (size_t i = 0; i < w->n_tensors; i++)
        qp_gw_buf_u64(&b, w->tensors[i].hash);
    if (b.oom)
        return qp_err_set(err, QP_ERR_NOMEM, w->tmp_path, "out of memory for checksums");
    int e = pwrite_all(w->fd, b.p, b.len, w->ck_off);
    free(b.p);
    if (e)
        return qp_err_io(err, w->tmp_path, e, "cannot write the checksum array");
    return QP_OK;
}

/* Every tensor fully written, exactly once. */
static qp_status check_complete(qp_gguf_writer *w, qp_err *err)
{
    if (w->write_failed) {
        qp_err_io(err, w->tmp_path, w->failed_errno, "an earlier write of tensor '%s' failed",
                  w->failed_tensor);
        qp_err_set_tensor(err, w->failed_tensor);
        return QP_ERR_IO;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const qp_gw_tensor *t = &w->tensors[i];
        if (t->written == t->nbytes)
            continue;
        qp_err_set(err, QP_ERR_USAGE, w->final_path,
                   t->written < t->nbytes ? "tensor '%s': only %llu of %llu bytes written"
                                          : "tensor '%s': %llu bytes written for %llu "
                                            "(overlapping pieces)",
                   t->name, (unsigned long long)t->written, (unsigned long long)t->nbytes);
        qp_err_set_tensor(err, t->name);
        return QP_ERR_USAGE;
    }
    return QP_OK;
}

/* Make the rename itself durable (best effort: not every fs allows it). */
static void sync_parent_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else {
        size_t n = (size_t)(slash - path);
        if (n >= sizeof dir)
            return;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

qp_status qp_gguf_writer_finish(qp_gguf_writer *w, qp_err *err)
{
    if (!w || w->state != QP_GW_BEGUN)
        return qp_err_set(err, QP_ERR_USAGE, w ? w->final_path : NULL,
                          "qp_gguf_writer_finish: writer not begun");
    qp_status st = check_complete(w, err);
    if (!st && w->checksums)
        st = write_checksums(w, err);
    if (!st && fsync(w->fd) != 0)
        st = qp_err_io(err, w->tmp_path, errno, "fsync failed");
    if (!st) {
        int fd = w->fd;
        w->fd = -1;
        if (close(fd) != 0)
            st = qp_err_io(err, w->tmp_path, errno, "close failed");
    }
    if (!st && rename(w->tmp_path, w->final_path) != 0)
        st = qp_err_io(err, w->final_path, errno, "cannot rename %s to it", w->tmp_path);
    if (st) {
        discard(w);
        return st;
    }
    qp_crash_tmp_unregister(w->crash_handle);
    w->crash_handle = -1;
    sync_parent_dir(w->final_path);
    w->state = QP_GW_FINISHED;
    return QP_OK;
}
