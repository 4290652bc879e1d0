/* st_index.c - sharded checkpoints: model.safetensors.index.json.
 *
 * The index's "weight_map" maps every tensor name to the shard file that
 * holds it. We open exactly the shards it names (sorted by file name, which
 * fixes file_index) and then demand that the index and the shards agree in
 * both directions: a tensor the index promises but the shard lacks, or a
 * tensor a shard holds that the index does not list, both mean the
 * checkpoint is not what its index says. */
#include "format/st_internal.h"

#include <cjson/cJSON.h>
#include "format/qp_json.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    const char *tensor; /* points into the cJSON tree */
    const char *shard;
    int file_index;
} index_entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const index_entry *)a)->tensor, ((const index_entry *)b)->tensor);
}

static int entry_find_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const index_entry *)elem)->tensor);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Read the whole index (bounded like a header) NUL-terminated. */
static qp_status read_index(const char *path, char **text, size_t *len, qp_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qp_err_io(err, path, errno, "cannot open");
    struct stat sb;
    qp_status st = QP_OK;
    if (fstat(fd, &sb) != 0)
        st = qp_err_io(err, path, errno, "cannot stat");
    else if (!S_ISREG(sb.st_mode))
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "not a regular file");
    else if ((uint64_t)sb.st_size > QP_ST_MAX_HEADER)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "index is %llu bytes, over the 100 MB limit",
                        (unsigned long long)sb.st_size);
    if (st != QP_OK) {
        close(fd);
        return st;
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    st = qp_st_pread_full(fd, buf, n, 0, path, err);
    close(fd);
    if (st != QP_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return QP_OK;
}

/* Shard names are plain file names next to the index: anything with a
 * directory part could point outside the checkpoint. */
static int shard_name_ok(const char *s)
{
    return s[0] != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static qp_status collect_entries(const cJSON *root, const char *path, index_entry **out, size_t *n_out,
                                 qp_err *err)
{
    if (!cJSON_IsObject(root))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "index is not a JSON object");
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!wm)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "index has no \"weight_map\"");
    if (!cJSON_IsObject(wm))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "index \"weight_map\" is not a JSON object");
    size_t n = (size_t)cJSON_GetArraySize(wm);
    if (n == 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "index \"weight_map\" is empty");
    index_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    size_t i = 0;
    for (const cJSON *it = wm->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it) || !shard_name_ok(it->valuestring)) {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "weight_map entry for \"%.200s\" is not a shard file name",
                       it->string);
            qp_err_set_tensor(err, it->string);
            free(e);
            return QP_ERR_BAD_INPUT;
        }
        e[i].tensor = it->string;
        e[i].shard = it->valuestring;
    }
    qsort(e, n, sizeof *e, entry_cmp);
    for (i = 1; i < n; i++) {
        if (strcmp(e[i - 1].tensor, e[i].tensor) == 0) {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "weight_map lists tensor \"%.200s\" twice", e[i].tensor);
            qp_err_set_tensor(err, e[i].tensor);
            free(e);
            return QP_ERR_BAD_INPUT;
        }
    }
    *out = e;
    *n_out = n;
    return QP_OK;
}

/* Unique shard names in sorted order; entries get their file_index. */
static qp_status collect_shards(index_entry *e, size_t n, const char *path, const char ***out, size_t *n_out,
                                qp_err *err)
{
    const char **s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    for (size_t i = 0; i < n; i++)
        s[i] = e[i].shard;
    qsort(s, n, sizeof *s, str_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(s[u - 1], s[i]) != 0)
            s[u++] = s[i];
    for (size_t i = 0; i < n; i++) {
        const char **hit = bsearch(&e[i].shard, s, u, sizeof *s, str_cmp);
        e[i].file_index = (int)(hit - s);
    }
    *out = s;
    *n_out = u;
    return QP_OK;
}

/* Both directions of index/shard agreement (see the file comment). */
static qp_status cross_check(const qp_st_model *m, const index_entry *e, size_t n, const char *path,
                             qp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const qp_st_tensor *t = qp_st_find(m, e[i].tensor);
        if (!t || t->file_index != e[i].file_index) {
            if (!t)
                qp_err_set(err, QP_ERR_BAD_INPUT, path,
                           "index maps tensor \"%.200s\" to shard %.200s, which does not contain it",
                           e[i].tensor, e[i].shard);
            else
                qp_err_set(err, QP_ERR_BAD_INPUT, path,
                           "index maps tensor \"%.200s\" to shard %.200s, but it is in %.400s", e[i].tensor,
                           e[i].shard, m->files[t->file_index].path);
            qp_err_set_tensor(err, e[i].tensor);
            return QP_ERR_BAD_INPUT;
        }
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        const qp_st_tensor *t = &m->tensors[i];
        if (!bsearch(t->name, e, n, sizeof *e, entry_find_cmp)) {
            qp_err_set(err, QP_ERR_BAD_INPUT, m->files[t->file_index].path,
                       "tensor \"%.200s\" is in this shard but not in the index %.400s", t->name, path);
            qp_err_set_tensor(err, t->name);
            return QP_ERR_BAD_INPUT;
        }
    }
    return QP_OK;
}

static qp_status open_shards(const char *dir, const char *path, const char **shards, size_t n_shards,
                             const index_entry *e, size_t n, qp_st_model **out, qp_err *err)
{
    qp_st_model *m = qp_st_model_new(n_shards);
    qp_st_header *hs = calloc(n_shards ? n_shards : 1, sizeof *hs);
    if (!m || !hs) {
        qp_st_close(m);
        free(hs);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    qp_status st = QP_OK;
    for (size_t i = 0; i < n_shards && st == QP_OK; i++) {
        char *sp = qp_st_join(dir, shards[i]);
        if (!sp) {
            st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
            break;
        }
        st = qp_st_open_one(m, (int)i, sp, &hs[i], err);
        if (st == QP_ERR_IO && err && err->sys_errno == ENOENT) {
            /* The index is what is wrong: it names a file that is not there. */
            const char *who = "";
            for (size_t k = 0; k < n; k++)
                if (e[k].file_index == (int)i) {
                    who = e[k].tensor;
                    break;
                }
            st = qp_err_set(err, QP_ERR_BAD_INPUT, path,
                            "index names shard %.200s (for tensor \"%.200s\"), which does not exist", shards[i],
                            who);
            qp_err_set_tensor(err, who);
        }
        free(sp);
    }
    if (st == QP_OK)
        st = qp_st_merge(m, hs, n_shards, err);
    for (size_t i = 0; i < n_shards; i++)
        qp_st_header_free(&hs[i]);
    free(hs);
    if (st == QP_OK)
        st = cross_check(m, e, n, path, err);
    if (st != QP_OK) {
        qp_st_close(m);
        return st;
    }
    *out = m;
    return QP_OK;
}

qp_status qp_st_open_index(const char *dir, const char *index_path, qp_st_model **out, qp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    qp_status st = read_index(index_path, &text, &len, err);
    if (st != QP_OK)
        return st;
    const char *end = NULL;
    int oom = 0;
    cJSON *root = qp_json_parse(text, len, &end, &oom);
    if (!root && oom) {
        free(text);
        return qp_err_set(err, QP_ERR_NOMEM, index_path, "out of memory parsing the index");
    }
    if (!root) {
        size_t pos = end && end >= text ? (size_t)(end - text) : 0;
        qp_err_set(err, QP_ERR_BAD_INPUT, index_path, "index is not valid JSON (error near byte %zu)", pos);
        qp_err_set_offset(err, (int64_t)pos);
        free(text);
        return QP_ERR_BAD_INPUT;
    }
    for (const char *p = end; p < text + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            qp_err_set(err, QP_ERR_BAD_INPUT, index_path, "trailing bytes after the index JSON at byte %zu",
                       (size_t)(p - text));
            cJSON_Delete(root);
            free(text);
            return QP_ERR_BAD_INPUT;
        }
    }
    index_entry *e = NULL;
    size_t n = 0, n_shards = 0;
    const char **shards = NULL;
    st = collect_entries(root, index_path, &e, &n, err);
    if (st == QP_OK)
        st = collect_shards(e, n, index_path, &shards, &n_shards, err);
    if (st == QP_OK)
        st = open_shards(dir, index_path, shards, n_shards, e, n, out, err);
    free(shards);
    free(e);
    cJSON_Delete(root);
    free(text);
    return st;
}
