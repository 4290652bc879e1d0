/* fileset.c - open a single GGUF or a whole llama.cpp split set. */
#include "verify/fileset.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_NO "split.no"
#define SPLIT_COUNT "split.count"
#define SPLIT_TENSORS "split.tensors.count"
/* gguf-split writes at most 99999 shards (five digits). */
#define SPLIT_MAX 99999

struct qp_fileset {
    qp_fileset_kind kind;
    int n_files;
    qp_gguf **files;
    char **paths;
    int64_t n_tensors;
    int64_t *first; /* first set index of each shard's tensors, n_files + 1 */
};

static int all_digits(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)p[i]))
            return 0;
    return 1;
}

int qp_fileset_parse_split_name(const char *path, int *index1, int *count, size_t *prefix_len)
{
    /* "-NNNNN-of-MMMMM.gguf" is 20 characters. */
    size_t n = strlen(path);
    if (n < 21)
        return 0;
    const char *t = path + n - 20;
    if (t[0] != '-' || memcmp(t + 6, "-of-", 4) != 0 || strcmp(t + 15, ".gguf") != 0 ||
        !all_digits(t + 1, 5) || !all_digits(t + 10, 5))
        return 0;
    int i = atoi(t + 1), c = atoi(t + 10);
    if (i < 1 || c < 1 || i > c)
        return 0;
    *index1 = i;
    *count = c;
    *prefix_len = n - 20;
    return 1;
}

void qp_fileset_close(qp_fileset *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++) {
        qp_gguf_close(s->files[i]);
        free(s->paths[i]);
    }
    free(s->files);
    free(s->paths);
    free(s->first);
    free(s);
}

static qp_fileset *alloc_set(int n)
{
    qp_fileset *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->files = calloc((size_t)n, sizeof *s->files);
    s->paths = calloc((size_t)n, sizeof *s->paths);
    s->first = calloc((size_t)n + 1, sizeof *s->first);
    if (!s->files || !s->paths || !s->first) {
        qp_fileset_close(s);
        return NULL;
    }
    s->n_files = n;
    return s;
}

/* A split key as an unsigned integer; 0 when absent or not an integer. */
static int split_key(const qp_gguf *g, const char *key, uint64_t *v)
{
    int64_t i = qp_gguf_find_key(g, key);
    return i >= 0 && qp_gguf_kv_as_u64(g, i, v);
}

static qp_status check_no_duplicates(const qp_fileset *s, int shard, qp_err *err)
{
    const qp_gguf *g = s->files[shard];
    char stack[512];
    for (int64_t t = 0; t < qp_gguf_tensor_count(g); t++) {
        const qp_gguf_tensor *ti = qp_gguf_tensor_at(g, t);
        char *name = ti->name.len < sizeof stack ? stack : malloc(ti->name.len + 1);
        if (!name)
            return qp_err_set(err, QP_ERR_NOMEM, s->paths[shard], "out of memory");
        memcpy(name, ti->name.ptr, ti->name.len);
        name[ti->name.len] = '\0';
        int dup = -1;
        for (int j = 0; j < shard && dup < 0; j++)
            if (qp_gguf_find_tensor(s->files[j], name))
                dup = j;
        qp_status st = QP_OK;
        if (dup >= 0) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[shard], "tensor also in shard %s", s->paths[dup]);
            qp_err_set_tensor(err, name);
        }
        if (name != stack)
            free(name);
        if (st != QP_OK)
            return st;
    }
    return QP_OK;
}

static qp_status open_split(const char *path, uint64_t count, qp_fileset **out, qp_err *err)
{
    int idx1, cnt;
    size_t plen;
    if (!qp_fileset_parse_split_name(path, &idx1, &cnt, &plen))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                          "has split.count %llu but is not named <prefix>-NNNNN-of-NNNNN.gguf",
                          (unsigned long long)count);
    if ((uint64_t)cnt != count)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "named as one of %d shards but split.count is %llu",
                          cnt, (unsigned long long)count);
    qp_fileset *s = alloc_set(cnt);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    s->kind = QP_FILESET_SPLIT;
    qp_status st = QP_OK;
    uint64_t total = 0;
    for (int i = 0; i < cnt && st == QP_OK; i++) {
        size_t n = plen + 21;
        s->paths[i] = malloc(n);
        if (!s->paths[i]) {
            st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
            break;
        }
        snprintf(s->paths[i], n, "%.*s-%05d-of-%05d.gguf", (int)plen, path, i + 1, cnt);
        st = qp_gguf_open(s->paths[i], &s->files[i], err);
        if (st == QP_ERR_IO && err && err->sys_errno == ENOENT) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[i], "shard %d of %d is missing", i + 1, cnt);
            break;
        }
        if (st != QP_OK)
            break;
        uint64_t no, c, tc;
        const qp_gguf *g = s->files[i];
        if (!split_key(g, SPLIT_NO, &no) || !split_key(g, SPLIT_COUNT, &c))
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[i], "shard has no split.no/split.count keys");
        else if (no != (uint64_t)i || c != (uint64_t)cnt)
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[i],
                            "shard says split.no %llu of split.count %llu, its name says %d of %d",
                            (unsigned long long)no, (unsigned long long)c, i, cnt);
        else if (i == 0 && !split_key(g, SPLIT_TENSORS, &total))
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[i], "first shard has no split.tensors.count");
        else if (i > 0 && split_key(g, SPLIT_TENSORS, &tc) && tc != total)
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[i],
                            "split.tensors.count %llu differs from the first shard's %llu",
                            (unsigned long long)tc, (unsigned long long)total);
        if (st == QP_OK)
            st = check_no_duplicates(s, i, err);
        s->first[i + 1] = s->first[i] + qp_gguf_tensor_count(g);
    }
    if (st == QP_OK && (uint64_t)s->first[cnt] != total)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[0],
                        "the %d shards hold %lld tensors but split.tensors.count is %llu", cnt,
                        (long long)s->first[cnt], (unsigned long long)total);
    if (st != QP_OK) {
        qp_fileset_close(s);
        return st;
    }
    s->n_tensors = s->first[cnt];
    *out = s;
    return QP_OK;
}

qp_status qp_fileset_open(const char *path, qp_fileset **out, qp_err *err)
{
    *out = NULL;
    qp_gguf *g = NULL;
    qp_status st = qp_gguf_open(path, &g, err);
    if (st != QP_OK)
        return st;
    uint64_t count = 0;
    int has_split = split_key(g, SPLIT_COUNT, &count);
    if (has_split && (count < 1 || count > SPLIT_MAX)) {
        qp_gguf_close(g);
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "split.count %llu out of range 1..%d",
                          (unsigned long long)count, SPLIT_MAX);
    }
    if (has_split) {
        /* Reopen every shard by name (including this one) so the set is
         * uniform; the extra mapping of one file is cheap. */
        st = open_split(path, count, out, err);
        qp_gguf_close(g);
        return st;
    }
    qp_fileset *s = alloc_set(1);
    char *p = strdup(path);
    if (!s || !p) {
        qp_fileset_close(s);
        free(p);
        qp_gguf_close(g);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    s->kind = QP_FILESET_SINGLE;
    s->files[0] = g;
    s->paths[0] = p;
    s->n_tensors = s->first[1] = qp_gguf_tensor_count(g);
    *out = s;
    return QP_OK;
}

qp_fileset_kind qp_fileset_kind_of(const qp_fileset *s)
{
    return s->kind;
}

int qp_fileset_file_count(const qp_fileset *s)
{
    return s->n_files;
}

const qp_gguf *qp_fileset_file(const qp_fileset *s, int i)
{
    return i >= 0 && i < s->n_files ? s->files[i] : NULL;
}

const char *qp_fileset_path(const qp_fileset *s, int i)
{
    return i >= 0 && i < s->n_files ? s->paths[i] : NULL;
}

const qp_gguf *qp_fileset_meta(const qp_fileset *s)
{
    return s->files[0];
}

int64_t qp_fileset_tensor_count(const qp_fileset *s)
{
    return s->n_tensors;
}

const qp_gguf_tensor *qp_fileset_tensor_at(const qp_fileset *s, int64_t i, int *file)
{
    if (i < 0 || i >= s->n_tensors)
        return NULL;
    int f = 0;
    while (i >= s->first[f + 1])
        f++;
    if (file)
        *file = f;
    return qp_gguf_tensor_at(s->files[f], i - s->first[f]);
}

const qp_gguf_tensor *qp_fileset_find(const qp_fileset *s, const char *name, int *file)
{
    for (int f = 0; f < s->n_files; f++) {
        const qp_gguf_tensor *t = qp_gguf_find_tensor(s->files[f], name);
        if (t) {
            if (file)
                *file = f;
            return t;
        }
    }
    return NULL;
}

uint64_t qp_fileset_bytes(const qp_fileset *s)
{
    uint64_t n = 0;
    for (int f = 0; f < s->n_files; f++)
        n += qp_gguf_file_size(s->files[f]);
    return n;
}

qp_status qp_fileset_verify_checksums(const qp_fileset *s, int *n_checked, qp_err *err)
{
    int n = 0;
    for (int f = 0; f < s->n_files; f++) {
        qp_status st = qp_gguf_verify_checksums(s->files[f], err);
        if (st == QP_ERR_NOT_FOUND) {
            qp_err_clear(err);
            continue;
        }
        if (st != QP_OK)
            return st;
        n++;
    }
    if (n_checked)
        *n_checked = n;
    return QP_OK;
}
