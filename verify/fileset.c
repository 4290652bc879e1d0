/* fileset.c - open a single GGUF, a whole llama.cpp split set or a whole
 * Qwen3-Omni set. */
#include "verify/fileset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf_set.h"

#define OMNI_FILES "qpack.omni.files"
#define OMNI_COMPONENTS "qpack.omni.components"
#define OMNI_COMPONENT "qpack.omni.component"
#define OMNI_SRC_COUNT "qpack.omni.source_tensor_count"
#define OMNI_SRC_HERE "qpack.omni.source_tensors_here"
#define OMNI_TENSOR_SOURCES "qpack.omni.tensor_sources"
/* More members than any layout qpack writes, few enough to stay bounded. */
#define OMNI_MAX 16

struct qp_fileset {
    qp_fileset_kind kind;
    int n_files;
    qp_gguf **files;
    char **paths;
    char **roles;   /* Omni roles, else NULL */
    qp_gguf_set *split; /* split sets: owns the files */
    int64_t n_tensors;
    int64_t *first; /* first set index of each shard's tensors, n_files + 1 */
};

void qp_fileset_close(qp_fileset *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++) {
        if (!s->split)
            qp_gguf_close(s->files[i]);
        free(s->paths[i]);
        if (s->roles)
            free(s->roles[i]);
    }
    free(s->roles);
    free(s->files);
    free(s->paths);
    free(s->first);
    qp_gguf_set_close(s->split);
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

/* A split set through format/gguf_set.h, which checks that it is complete
 * and consistent; here only the failure to find a shard is reworded. */
static qp_status open_split(const char *path, qp_fileset **out, qp_err *err)
{
    qp_gguf_set *gs = NULL;
    qp_status st = qp_gguf_set_open(path, &gs, err);
    if (st == QP_ERR_IO && err && err->sys_errno == ENOENT) {
        char missing[sizeof err->path];
        snprintf(missing, sizeof missing, "%s", err->path);
        return qp_err_set(err, QP_ERR_BAD_INPUT, missing, "this shard of the split set is missing");
    }
    if (st != QP_OK)
        return st;
    int n = qp_gguf_set_file_count(gs);
    qp_fileset *s = alloc_set(n);
    if (!s) {
        qp_gguf_set_close(gs);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    s->kind = QP_FILESET_SPLIT;
    s->split = gs;
    for (int i = 0; i < n; i++) {
        s->files[i] = (qp_gguf *)qp_gguf_set_file(gs, i);
        s->paths[i] = strdup(qp_gguf_path(s->files[i]));
        if (!s->paths[i]) {
            qp_fileset_close(s);
            return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        }
        s->first[i + 1] = s->first[i] + qp_gguf_tensor_count(s->files[i]);
    }
    s->n_tensors = s->first[n];
    *out = s;
    return QP_OK;
}

/* ------------------------------------------------------------ omni sets */

static int str_eq(qp_gguf_str a, qp_gguf_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static int str_is(qp_gguf_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && memcmp(a.ptr, b, n) == 0;
}

/* The string array `key` of g: its key index, or -1 when absent/not strings. */
static int64_t str_array(const qp_gguf *g, const char *key, uint64_t *len)
{
    int64_t k = qp_gguf_find_key(g, key);
    if (k < 0 || qp_gguf_kv_type(g, k) != QP_GGUF_ARRAY || qp_gguf_arr_type(g, k) != QP_GGUF_STRING)
        return -1;
    *len = qp_gguf_arr_len(g, k);
    return k;
}

/* Same manifest (files and components arrays) in a and b. */
static int same_manifest(const qp_gguf *a, const qp_gguf *b)
{
    const char *keys[2] = {OMNI_FILES, OMNI_COMPONENTS};
    for (int k = 0; k < 2; k++) {
        uint64_t na = 0, nb = 0;
        int64_t ia = str_array(a, keys[k], &na), ib = str_array(b, keys[k], &nb);
        if (ia < 0 || ib < 0 || na != nb)
            return 0;
        for (uint64_t j = 0; j < na; j++)
            if (!str_eq(qp_gguf_arr_str(a, ia, j), qp_gguf_arr_str(b, ib, j)))
                return 0;
    }
    return 1;
}

static qp_status check_member(qp_fileset *s, int i, const qp_gguf *first, int64_t ic, uint64_t *src_here,
                              qp_err *err)
{
    const qp_gguf *g = s->files[i];
    const char *p = s->paths[i];
    qp_gguf_str role;
    uint64_t n;
    if (!same_manifest(g, first))
        return qp_err_set(err, QP_ERR_BAD_INPUT, p, "its qpack.omni manifest differs from %s's", s->paths[0]);
    if (!qp_gguf_get_str(g, OMNI_COMPONENT, &role) || !str_eq(role, qp_gguf_arr_str(first, ic, (uint64_t)i)))
        return qp_err_set(err, QP_ERR_BAD_INPUT, p, "qpack.omni.component is not '%s' as the manifest says",
                          s->roles[i]);
    int64_t ts = str_array(g, OMNI_TENSOR_SOURCES, &n);
    if (ts >= 0 && n != (uint64_t)qp_gguf_tensor_count(g))
        return qp_err_set(err, QP_ERR_BAD_INPUT, p, "%llu qpack.omni.tensor_sources entries for %lld tensors",
                          (unsigned long long)n, (long long)qp_gguf_tensor_count(g));
    if (!qp_gguf_get_u64(g, OMNI_SRC_HERE, src_here))
        return qp_err_set(err, QP_ERR_BAD_INPUT, p, "no %s", OMNI_SRC_HERE);
    return QP_OK;
}

static qp_status open_omni(const char *path, const qp_gguf *g, qp_fileset **out, qp_err *err)
{
    uint64_t nf = 0, nc = 0;
    int64_t kf = str_array(g, OMNI_FILES, &nf), kc = str_array(g, OMNI_COMPONENTS, &nc);
    if (kf < 0 || kc < 0 || nf != nc || nf < 1 || nf > OMNI_MAX)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "incomplete qpack.omni manifest (%s and %s must be string "
                          "arrays of the same length, 1..%d)", OMNI_FILES, OMNI_COMPONENTS, OMNI_MAX);
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path + 1) : 0;
    const char *self = path + dir_len;
    int self_index = -1;
    for (uint64_t i = 0; i < nf; i++) {
        qp_gguf_str f = qp_gguf_arr_str(g, kf, i);
        /* Members live next to each other: a bare file name, nothing else. */
        if (f.len == 0 || f.len > 255 || memchr(f.ptr, '/', f.len) || memchr(f.ptr, '\0', f.len) ||
            str_is(f, ".") || str_is(f, ".."))
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "qpack.omni.files entry %llu is not a file name",
                              (unsigned long long)i);
        if (str_is(f, self))
            self_index = (int)i;
    }
    if (self_index < 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "its name is not in its own qpack.omni.files manifest");
    qp_fileset *s = alloc_set((int)nf);
    if (s)
        s->roles = calloc(nf, sizeof *s->roles);
    if (!s || !s->roles) {
        qp_fileset_close(s);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    s->kind = QP_FILESET_OMNI;
    qp_status st = QP_OK;
    for (uint64_t i = 0; i < nf && st == QP_OK; i++) {
        qp_gguf_str f = qp_gguf_arr_str(g, kf, i), r = qp_gguf_arr_str(g, kc, i);
        s->paths[i] = malloc(dir_len + f.len + 1);
        s->roles[i] = malloc(r.len + 1);
        if (!s->paths[i] || !s->roles[i]) {
            st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
            break;
        }
        memcpy(s->paths[i], path, dir_len);
        memcpy(s->paths[i] + dir_len, f.ptr, f.len);
        s->paths[i][dir_len + f.len] = '\0';
        memcpy(s->roles[i], r.ptr, r.len);
        s->roles[i][r.len] = '\0';
        st = qp_gguf_open(s->paths[i], &s->files[i], err);
        if (st == QP_ERR_IO && err && err->sys_errno == ENOENT)
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[i], "member '%s' of the Omni set is missing",
                            s->roles[i]);
    }
    uint64_t total = 0, sum = 0;
    if (st == QP_OK && !qp_gguf_get_u64(g, OMNI_SRC_COUNT, &total))
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "no %s", OMNI_SRC_COUNT);
    for (uint64_t i = 0; i < nf && st == QP_OK; i++) {
        uint64_t here = 0, t = 0;
        st = check_member(s, (int)i, g, kc, &here, err);
        if (st == QP_OK && (!qp_gguf_get_u64(s->files[i], OMNI_SRC_COUNT, &t) || t != total))
            st = qp_err_set(err, QP_ERR_BAD_INPUT, s->paths[i], "%s differs from %s's", OMNI_SRC_COUNT, path);
        sum += here;
        s->first[i + 1] = s->first[i] + qp_gguf_tensor_count(s->files[i]);
    }
    if (st == QP_OK && sum != total)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path,
                        "the members hold %llu source tensors but the source had %llu: some are in no file",
                        (unsigned long long)sum, (unsigned long long)total);
    if (st != QP_OK) {
        qp_fileset_close(s);
        return st;
    }
    s->n_tensors = s->first[nf];
    *out = s;
    return QP_OK;
}

/* A set of the one file g (taken over, closed on failure). */
static qp_status single(const char *path, qp_gguf *g, qp_fileset **out, qp_err *err)
{
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

qp_status qp_fileset_open(const char *path, qp_fileset **out, qp_err *err)
{
    *out = NULL;
    qp_gguf *g = NULL;
    qp_status st = qp_gguf_open(path, &g, err);
    if (st != QP_OK)
        return st;
    if (qp_gguf_find_key(g, OMNI_FILES) >= 0) {
        st = open_omni(path, g, out, err);
        qp_gguf_close(g);
        return st;
    }
    /* A shard (by its name, as llama.cpp finds them) opens the whole set;
     * split keys on a file not named like a shard are an error, not a
     * silently partial model. */
    char first[16];
    int k, n;
    uint64_t count = 0;
    int named = qp_gguf_split_parse(path, first, sizeof first, &k, &n);
    if (!named && qp_gguf_get_u64(g, "split.count", &count) && count > 1) {
        qp_gguf_close(g);
        return qp_err_set(err, QP_ERR_BAD_INPUT, path,
                          "has split.count %llu but is not named <prefix>-NNNNN-of-NNNNN.gguf",
                          (unsigned long long)count);
    }
    if (named) {
        qp_gguf_close(g);
        return open_split(path, out, err);
    }
    return single(path, g, out, err);
}

qp_status qp_fileset_open_file(const char *path, qp_fileset **out, qp_err *err)
{
    *out = NULL;
    qp_gguf *g = NULL;
    qp_status st = qp_gguf_open(path, &g, err);
    if (st != QP_OK)
        return st;
    return single(path, g, out, err);
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

const char *qp_fileset_role(const qp_fileset *s, int i)
{
    return s->roles && i >= 0 && i < s->n_files ? s->roles[i] : "";
}

int64_t qp_fileset_file_first(const qp_fileset *s, int i)
{
    return i >= 0 && i < s->n_files ? s->first[i] : 0;
}

int64_t qp_fileset_file_tensors(const qp_fileset *s, int i)
{
    return i >= 0 && i < s->n_files ? s->first[i + 1] - s->first[i] : 0;
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
