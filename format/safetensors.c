/* safetensors.c - a checkpoint: its files, the merged tensor table, reads.
 *
 * Opening reads and validates every header (st_header.c) and, for sharded
 * checkpoints, cross-checks the index (st_index.c). After that the tensor
 * table is trusted; reads still recheck the file size because the file may
 * shrink while we hold it open. Data is read with pread, never mapped, so a
 * truncated file is an error instead of SIGBUS. */
#include "format/safetensors.h"
#include "format/st_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qp_checked.h"

char *qp_st_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

qp_status qp_st_pread_full(int fd, void *buf, size_t n, uint64_t off, const char *path, qp_err *err)
{
    unsigned char *p = buf;
    while (n > 0) {
        size_t want = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pread(fd, p, want, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            qp_err_io(err, path, errno, "read of %zu bytes at offset %llu failed", n, (unsigned long long)off);
            qp_err_set_offset(err, (int64_t)off);
            return QP_ERR_IO;
        }
        if (r == 0) {
            qp_err_set(err, QP_ERR_IO, path, "unexpected end of file at offset %llu (file truncated?)",
                       (unsigned long long)off);
            qp_err_set_offset(err, (int64_t)off);
            return QP_ERR_IO;
        }
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return QP_OK;
}

qp_st_model *qp_st_model_new(size_t n_files)
{
    qp_st_model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->files = calloc(n_files ? n_files : 1, sizeof *m->files);
    if (!m->files) {
        free(m);
        return NULL;
    }
    m->n_files = n_files;
    for (size_t i = 0; i < n_files; i++)
        m->files[i].fd = -1;
    return m;
}

void qp_st_close(qp_st_model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_files; i++) {
        if (m->files[i].fd >= 0)
            close(m->files[i].fd);
        free(m->files[i].path);
    }
    free(m->files);
    for (size_t i = 0; i < m->n_tensors; i++)
        free((char *)m->tensors[i].name);
    free(m->tensors);
    for (size_t i = 0; i < m->n_meta; i++) {
        free(m->meta_keys[i]);
        free(m->meta_vals[i]);
    }
    free(m->meta_keys);
    free(m->meta_vals);
    free(m);
}

qp_status qp_st_open_one(qp_st_model *m, int file_index, const char *path, qp_st_header *h, qp_err *err)
{
    memset(h, 0, sizeof *h);
    qp_st_file *f = &m->files[file_index];
    if (!(f->path = strdup(path)))
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return qp_err_io(err, path, errno, "cannot open");
    struct stat sb;
    if (fstat(f->fd, &sb) != 0)
        return qp_err_io(err, path, errno, "cannot stat");
    if (!S_ISREG(sb.st_mode))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "not a regular file");
    f->size = (uint64_t)sb.st_size;
    if (f->size < 8)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                          "file is %llu bytes, too short for the 8-byte header length",
                          (unsigned long long)f->size);
    unsigned char pre[8];
    qp_status st = qp_st_pread_full(f->fd, pre, 8, 0, path, err);
    if (st != QP_OK)
        return st;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = (hl << 8) | pre[i];
    if (hl > QP_ST_MAX_HEADER) {
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "header length %llu exceeds the 100 MB limit",
                   (unsigned long long)hl);
        qp_err_set_offset(err, 0);
        return QP_ERR_BAD_INPUT;
    }
    if (hl > f->size - 8) {
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "header length %llu past end of file (%llu bytes)",
                   (unsigned long long)hl, (unsigned long long)f->size);
        qp_err_set_offset(err, 0);
        return QP_ERR_BAD_INPUT;
    }
    char *json = malloc(hl ? hl : 1);
    if (!json)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for a %llu-byte header", (unsigned long long)hl);
    st = qp_st_pread_full(f->fd, json, (size_t)hl, 8, path, err);
    if (st == QP_OK)
        st = qp_st_header_parse(json, (size_t)hl, f->size - 8 - hl, 8 + hl, file_index, path, h, err);
    free(json);
    return st;
}

static int tensor_cmp(const void *a, const void *b)
{
    const qp_st_tensor *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->file_index != y->file_index)
        return x->file_index < y->file_index ? -1 : 1;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

qp_status qp_st_merge(qp_st_model *m, qp_st_header *hs, size_t n_hs, qp_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n_hs; i++)
        total += hs[i].n_tensors;
    m->tensors = calloc(total ? total : 1, sizeof *m->tensors);
    if (!m->tensors)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory for %zu tensors", total);
    /* Move tensors (and name ownership) from the headers into the model. */
    for (size_t i = 0; i < n_hs; i++) {
        if (hs[i].n_tensors)
            memcpy(m->tensors + m->n_tensors, hs[i].tensors, hs[i].n_tensors * sizeof *m->tensors);
        m->n_tensors += hs[i].n_tensors;
        hs[i].n_tensors = 0;
    }
    if (n_hs > 0) {
        /* The metadata of the first file is the checkpoint's. */
        m->meta_keys = hs[0].meta_keys;
        m->meta_vals = hs[0].meta_vals;
        m->n_meta = hs[0].n_meta;
        hs[0].meta_keys = hs[0].meta_vals = NULL;
        hs[0].n_meta = 0;
    }
    qsort(m->tensors, m->n_tensors, sizeof *m->tensors, tensor_cmp);
    for (size_t i = 1; i < m->n_tensors; i++) {
        const qp_st_tensor *a = &m->tensors[i - 1], *b = &m->tensors[i];
        if (strcmp(a->name, b->name) == 0) {
            qp_err_set(err, QP_ERR_BAD_INPUT, m->files[b->file_index].path,
                       "duplicate tensor name \"%.200s\" (also in %.400s)", b->name,
                       m->files[a->file_index].path);
            qp_err_set_tensor(err, b->name);
            return QP_ERR_BAD_INPUT;
        }
    }
    return QP_OK;
}

static void free_headers(qp_st_header *hs, size_t n)
{
    if (!hs)
        return;
    for (size_t i = 0; i < n; i++)
        qp_st_header_free(&hs[i]);
    free(hs);
}

/* Open the given files (in this order) as one checkpoint. */
static qp_status open_files(char **paths, size_t n, qp_st_model **out, qp_err *err)
{
    qp_st_model *m = qp_st_model_new(n);
    qp_st_header *hs = calloc(n ? n : 1, sizeof *hs);
    if (!m || !hs) {
        qp_st_close(m);
        free(hs);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory");
    }
    qp_status st = QP_OK;
    for (size_t i = 0; i < n && st == QP_OK; i++)
        st = qp_st_open_one(m, (int)i, paths[i], &hs[i], err);
    if (st == QP_OK)
        st = qp_st_merge(m, hs, n, err);
    free_headers(hs, n);
    if (st != QP_OK) {
        qp_st_close(m);
        return st;
    }
    *out = m;
    return QP_OK;
}

qp_status qp_st_open_file(const char *path, qp_st_model **out, qp_err *err)
{
    if (!path || !out)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_st_open_file: NULL argument");
    *out = NULL;
    char *p = (char *)path;
    return open_files(&p, 1, out, err);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* No index and no model.safetensors: take every *.safetensors, sorted. */
static qp_status open_glob(const char *dir, qp_st_model **out, qp_err *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return qp_err_io(err, dir, errno, "cannot open directory");
    char **paths = NULL;
    size_t n = 0, cap = 0;
    qp_status st = QP_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !ends_with(de->d_name, ".safetensors"))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **np = realloc(paths, nc * sizeof *np);
            if (!np) {
                st = qp_err_set(err, QP_ERR_NOMEM, dir, "out of memory");
                break;
            }
            paths = np;
            cap = nc;
        }
        if (!(paths[n] = qp_st_join(dir, de->d_name))) {
            st = qp_err_set(err, QP_ERR_NOMEM, dir, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (st == QP_OK && n == 0)
        st = qp_err_set(err, QP_ERR_NOT_FOUND, dir,
                        "no model.safetensors.index.json, model.safetensors or *.safetensors file");
    if (st == QP_OK) {
        qsort(paths, n, sizeof *paths, str_cmp);
        st = open_files(paths, n, out, err);
    }
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    return st;
}

qp_status qp_st_open_dir(const char *dir, qp_st_model **out, qp_err *err)
{
    if (!dir || !out)
        return qp_err_set(err, QP_ERR_USAGE, dir, "qp_st_open_dir: NULL argument");
    *out = NULL;
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return qp_err_io(err, dir, errno, "cannot open checkpoint directory");
    if (!S_ISDIR(sb.st_mode))
        return qp_err_set(err, QP_ERR_USAGE, dir, "not a directory");

    char *index = qp_st_join(dir, "model.safetensors.index.json");
    char *single = qp_st_join(dir, "model.safetensors");
    qp_status st;
    if (!index || !single)
        st = qp_err_set(err, QP_ERR_NOMEM, dir, "out of memory");
    else if (stat(index, &sb) == 0)
        st = qp_st_open_index(dir, index, out, err);
    else if (stat(single, &sb) == 0)
        st = qp_st_open_file(single, out, err);
    else
        st = open_glob(dir, out, err);
    free(index);
    free(single);
    return st;
}

size_t qp_st_count(const qp_st_model *m)
{
    return m ? m->n_tensors : 0;
}

const qp_st_tensor *qp_st_at(const qp_st_model *m, size_t i)
{
    return m && i < m->n_tensors ? &m->tensors[i] : NULL;
}

static int find_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const qp_st_tensor *)elem)->name);
}

const qp_st_tensor *qp_st_find(const qp_st_model *m, const char *name)
{
    if (!m || !name || m->n_tensors == 0)
        return NULL;
    return bsearch(name, m->tensors, m->n_tensors, sizeof *m->tensors, find_cmp);
}

size_t qp_st_file_count(const qp_st_model *m)
{
    return m ? m->n_files : 0;
}

const char *qp_st_file_path(const qp_st_model *m, int file_index)
{
    if (!m || file_index < 0 || (size_t)file_index >= m->n_files)
        return NULL;
    return m->files[file_index].path;
}

uint64_t qp_st_file_size(const qp_st_model *m, int file_index)
{
    if (!m || file_index < 0 || (size_t)file_index >= m->n_files)
        return 0;
    return m->files[file_index].size;
}

const char *qp_st_metadata_get(const qp_st_model *m, const char *key)
{
    if (!m || !key)
        return NULL;
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta_keys[i], key) == 0)
            return m->meta_vals[i];
    return NULL;
}

qp_status qp_st_read_raw(const qp_st_model *m, const qp_st_tensor *t, uint64_t offset, void *dst, size_t n,
                         qp_err *err)
{
    if (!m || !t || (!dst && n) || t->file_index < 0 || (size_t)t->file_index >= m->n_files)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_st_read_raw: bad argument");
    const qp_st_file *f = &m->files[t->file_index];
    uint64_t end;
    if (!qp_add_u64(offset, n, &end) || end > t->nbytes) {
        qp_err_set(err, QP_ERR_USAGE, f->path, "read of %zu bytes at %llu past the end of the tensor (%llu bytes)",
                   n, (unsigned long long)offset, (unsigned long long)t->nbytes);
        qp_err_set_tensor(err, t->name);
        return QP_ERR_USAGE;
    }
    if (n == 0)
        return QP_OK;
    /* The file may have been truncated since open; pread past EOF would
     * only show up as a short read, so say what happened up front. */
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) {
        qp_err_io(err, f->path, errno, "cannot stat");
        qp_err_set_tensor(err, t->name);
        return QP_ERR_IO;
    }
    uint64_t need = t->file_offset + end; /* <= file size at open: validated */
    if ((uint64_t)sb.st_size < need) {
        qp_err_set(err, QP_ERR_IO, f->path, "file shrank to %llu bytes after open (was %llu); tensor needs %llu",
                   (unsigned long long)sb.st_size, (unsigned long long)f->size, (unsigned long long)need);
        qp_err_set_tensor(err, t->name);
        return QP_ERR_IO;
    }
    qp_status st = qp_st_pread_full(f->fd, dst, n, t->file_offset + offset, f->path, err);
    if (st != QP_OK)
        qp_err_set_tensor(err, t->name);
    return st;
}

qp_status qp_st_read_f32(const qp_st_model *m, const qp_st_tensor *t, uint64_t first, uint64_t count, float *dst,
                         qp_err *err)
{
    if (!m || !t || (!dst && count))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_st_read_f32: bad argument");
    const char *path = qp_st_file_path(m, t->file_index);
    uint64_t end;
    if (!qp_st_dtype_is_float(t->dtype)) {
        qp_err_set(err, QP_ERR_USAGE, path, "tensor is %s, not a float dtype", qp_st_dtype_name(t->dtype));
        qp_err_set_tensor(err, t->name);
        return QP_ERR_USAGE;
    }
    if (!qp_add_u64(first, count, &end) || end > t->n_elems || count > SIZE_MAX / 8) {
        qp_err_set(err, QP_ERR_USAGE, path, "elements [%llu, +%llu) past the end of the tensor (%llu)",
                   (unsigned long long)first, (unsigned long long)count, (unsigned long long)t->n_elems);
        qp_err_set_tensor(err, t->name);
        return QP_ERR_USAGE;
    }
    const uint32_t es = qp_st_dtype_size(t->dtype);
    if (t->dtype == QP_ST_F32) /* little-endian host: the bytes are the floats */
        return qp_st_read_raw(m, t, first * 4, dst, (size_t)count * 4, err);

    /* Convert through a bounded buffer: one pread per MiB. */
    const size_t chunk = ((size_t)1 << 20) / es;
    size_t bufn = count < chunk ? (size_t)count : chunk;
    unsigned char *buf = malloc(bufn ? bufn * es : 1);
    if (!buf)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    qp_status st = QP_OK;
    for (uint64_t done = 0; done < count && st == QP_OK;) {
        size_t k = count - done < bufn ? (size_t)(count - done) : bufn;
        st = qp_st_read_raw(m, t, (first + done) * es, buf, k * es, err);
        if (st == QP_OK)
            qp_st_convert_f32(t->dtype, buf, k, dst + done);
        done += k;
    }
    free(buf);
    return st;
}

void qp_st_release(const qp_st_model *m, const qp_st_tensor *t)
{
    if (!m || !t || t->file_index < 0 || (size_t)t->file_index >= m->n_files || t->nbytes == 0)
        return;
    /* Advice only: failure changes nothing but memory pressure. */
    (void)posix_fadvise(m->files[t->file_index].fd, (off_t)t->file_offset, (off_t)t->nbytes,
                        POSIX_FADV_DONTNEED);
}
