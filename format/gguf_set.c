/* gguf_set.c - open every file of a gguf-split set (see gguf_set.h). */
#include "format/gguf_set.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qp_gguf_set {
    int n_files;
    qp_gguf **files;
    int64_t n_tensors;
    const qp_gguf_tensor **tensors;
};

void qp_gguf_split_path(const char *out_path, int k, int n, char *buf, size_t size)
{
    size_t len = strlen(out_path);
    if (len >= 5 && strcmp(out_path + len - 5, ".gguf") == 0)
        len -= 5;
    snprintf(buf, size, "%.*s-%05d-of-%05d.gguf", (int)len, out_path, k + 1, n);
}

int qp_gguf_split_parse(const char *path, char *first, size_t size, int *k, int *n)
{
    size_t len = strlen(path);
    /* "-00001-of-00003.gguf" is 20 characters */
    if (len < 20 || strcmp(path + len - 5, ".gguf") != 0)
        return 0;
    const char *s = path + len - 20;
    if (s[0] != '-' || memcmp(s + 6, "-of-", 4) != 0)
        return 0;
    int a = 0, b = 0;
    for (int i = 1; i <= 5; i++) {
        if (s[i] < '0' || s[i] > '9' || s[9 + i] < '0' || s[9 + i] > '9')
            return 0;
        a = a * 10 + (s[i] - '0');
        b = b * 10 + (s[9 + i] - '0');
    }
    if (a < 1 || b < 1 || a > b)
        return 0;
    *k = a - 1;
    *n = b;
    snprintf(first, size, "%.*s-%05d-of-%05d.gguf", (int)(len - 20), path, 1, b);
    return 1;
}

void qp_gguf_set_close(qp_gguf_set *s)
{
    if (!s)
        return;
    for (int k = 0; k < s->n_files; k++)
        qp_gguf_close(s->files[k]);
    free(s->files);
    free(s->tensors);
    free(s);
}

static qp_status check_split_keys(const qp_gguf *g, int k, int n, uint64_t *total, qp_err *err)
{
    uint64_t no, count, tc;
    if (!qp_gguf_get_u64(g, "split.no", &no) || !qp_gguf_get_u64(g, "split.count", &count) ||
        !qp_gguf_get_u64(g, "split.tensors.count", &tc))
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "file of a split set lacks split.* keys");
    if (no != (uint64_t)k || count != (uint64_t)n)
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "split.no %llu / split.count %llu do not match "
                          "the file name (%d of %d)", (unsigned long long)no, (unsigned long long)count, k + 1, n);
    if (k > 0 && tc != *total)
        return qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(g), "split.tensors.count %llu differs from the first "
                          "file's %llu", (unsigned long long)tc, (unsigned long long)*total);
    *total = tc;
    return QP_OK;
}

qp_status qp_gguf_set_open(const char *path, qp_gguf_set **out, qp_err *err)
{
    *out = NULL;
    char first[4096];
    int k0, n = 1;
    int is_split = qp_gguf_split_parse(path, first, sizeof first, &k0, &n);
    qp_gguf_set *s = calloc(1, sizeof *s);
    if (s)
        s->files = calloc((size_t)n, sizeof *s->files);
    if (!s || !s->files) {
        qp_gguf_set_close(s);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    qp_status st = QP_OK;
    uint64_t total = 0;
    for (int k = 0; k < n && st == QP_OK; k++) {
        char p[4096];
        if (is_split) /* first is STEM-00001-of-N.gguf: swap in this file's number */
            snprintf(p, sizeof p, "%.*s-%05d-of-%05d.gguf", (int)(strlen(first) - 20), first, k + 1, n);
        else
            snprintf(p, sizeof p, "%s", path);
        st = qp_gguf_open(p, &s->files[k], err);
        if (st != QP_OK)
            break;
        s->n_files++;
        if (is_split)
            st = check_split_keys(s->files[k], k, n, &total, err);
        s->n_tensors += qp_gguf_tensor_count(s->files[k]);
    }
    if (st == QP_OK && is_split && (uint64_t)s->n_tensors != total)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "the set holds %lld tensors, split.tensors.count says %llu",
                        (long long)s->n_tensors, (unsigned long long)total);
    if (st == QP_OK) {
        s->tensors = calloc((size_t)(s->n_tensors ? s->n_tensors : 1), sizeof *s->tensors);
        if (!s->tensors)
            st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    int64_t j = 0;
    for (int k = 0; st == QP_OK && k < s->n_files; k++)
        for (int64_t i = 0; i < qp_gguf_tensor_count(s->files[k]); i++) {
            const qp_gguf_tensor *t = qp_gguf_tensor_at(s->files[k], i);
            /* a name may appear in one file of the set only */
            for (int q = 0; q < k && st == QP_OK; q++) {
                char name[512];
                snprintf(name, sizeof name, "%.*s", (int)(t->name.len > 500 ? 500 : t->name.len), t->name.ptr);
                if (qp_gguf_find_tensor(s->files[q], name)) {
                    st = qp_err_set(err, QP_ERR_BAD_INPUT, qp_gguf_path(s->files[k]),
                                    "tensor also present in %s", qp_gguf_path(s->files[q]));
                    qp_err_set_tensor(err, name);
                }
            }
            s->tensors[j++] = t;
        }
    if (st != QP_OK) {
        qp_gguf_set_close(s);
        return st;
    }
    *out = s;
    return QP_OK;
}

int qp_gguf_set_file_count(const qp_gguf_set *s) { return s->n_files; }
const qp_gguf *qp_gguf_set_file(const qp_gguf_set *s, int k) { return k >= 0 && k < s->n_files ? s->files[k] : NULL; }
int64_t qp_gguf_set_tensor_count(const qp_gguf_set *s) { return s->n_tensors; }

const qp_gguf_tensor *qp_gguf_set_tensor_at(const qp_gguf_set *s, int64_t i)
{
    return i >= 0 && i < s->n_tensors ? s->tensors[i] : NULL;
}

const qp_gguf_tensor *qp_gguf_set_find_tensor(const qp_gguf_set *s, const char *name)
{
    for (int k = 0; k < s->n_files; k++) {
        const qp_gguf_tensor *t = qp_gguf_find_tensor(s->files[k], name);
        if (t)
            return t;
    }
    return NULL;
}
