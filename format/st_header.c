/* st_header.c - parse and validate one safetensors JSON header.
 *
 * Everything the rest of the reader trusts is checked here, before any
 * tensor data is touched: the JSON itself (UTF-8, no NUL, well-formed,
 * nesting bounded by cJSON), the types of every field, integer-valued
 * offsets and dimensions <= 2^53, byte sizes computed with overflow checks
 * and matching the offsets, ranges inside the data region and disjoint. */
#include "format/st_internal.h"

#include <cjson/cJSON.h>
#include "format/qp_json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "common/qp_checked.h"

int qp_st_json_uint(double v, uint64_t *out)
{
    /* !(v >= 0) also rejects NaN. The range check comes before the cast so
     * the cast is always defined; the round trip then rejects fractions. */
    if (!(v >= 0.0) || v > (double)QP_ST_MAX_JSON_INT)
        return 0;
    uint64_t u = (uint64_t)v;
    if ((double)u != v)
        return 0;
    *out = u;
    return 1;
}

void qp_st_header_free(qp_st_header *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_tensors; i++)
        free((char *)h->tensors[i].name);
    free(h->tensors);
    for (size_t i = 0; i < h->n_meta; i++) {
        free(h->meta_keys[i]);
        free(h->meta_vals[i]);
    }
    free(h->meta_keys);
    free(h->meta_vals);
    memset(h, 0, sizeof *h);
}

/* Did the JSON text up to `len` open more than `limit` nested containers?
 * Only used to explain a parse failure: cJSON refuses such input but does
 * not say why. */
static int nesting_exceeds(const char *s, size_t len, int limit)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > limit)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

static qp_status check_text(const char *json, size_t len, const char *path, qp_err *err)
{
    const char *nul = memchr(json, '\0', len);
    if (nul) {
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "header contains a NUL byte at header offset %zu",
                   (size_t)(nul - json));
        qp_err_set_offset(err, (int64_t)(8 + (nul - json)));
        return QP_ERR_BAD_INPUT;
    }
    /* Tensor names end up in GGUF strings, which must be UTF-8. */
    size_t pos = 0;
    while (pos < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)json + pos,
                                              (utf8proc_ssize_t)(len - pos), &cp);
        if (k <= 0) {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "header is not valid UTF-8 at header offset %zu", pos);
            qp_err_set_offset(err, (int64_t)(8 + pos));
            return QP_ERR_BAD_INPUT;
        }
        pos += (size_t)k;
    }
    return QP_OK;
}

static qp_status entry_err(qp_err *err, qp_status st, const char *path, const char *name,
                           const char *what)
{
    qp_err_set(err, st, path, "tensor \"%.200s\": %s", name, what);
    qp_err_set_tensor(err, name);
    return st;
}

/* Read one JSON number that must be an integer in [0, 2^53]; `what` names it
 * in the message ("shape[1]", "data_offsets[0]"). */
static qp_status get_uint(const cJSON *v, const char *what, const char *path, const char *name,
                          uint64_t *out, qp_err *err)
{
    char msg[160];
    if (!cJSON_IsNumber(v)) {
        snprintf(msg, sizeof msg, "%s is not a number", what);
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
    }
    double d = v->valuedouble;
    if (qp_st_json_uint(d, out))
        return QP_OK;
    if (d < 0)
        snprintf(msg, sizeof msg, "%s is negative (%.17g)", what, d);
    else if (d > (double)QP_ST_MAX_JSON_INT)
        snprintf(msg, sizeof msg, "%s (%.17g) exceeds 2^53", what, d);
    else
        snprintf(msg, sizeof msg, "%s (%.17g) is not an integer", what, d);
    return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
}

static qp_status parse_entry(const cJSON *e, const char *name, uint64_t data_size, uint64_t data_base,
                             const char *path, qp_st_tensor *t, qp_err *err)
{
    char msg[256];
    if (!cJSON_IsObject(e))
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, "entry is not a JSON object");
    const cJSON *jd = NULL, *js = NULL, *jo = NULL;
    for (const cJSON *it = e->child; it; it = it->next) {
        const cJSON **slot = NULL;
        if (strcmp(it->string, "dtype") == 0)
            slot = &jd;
        else if (strcmp(it->string, "shape") == 0)
            slot = &js;
        else if (strcmp(it->string, "data_offsets") == 0)
            slot = &jo;
        if (!slot) {
            snprintf(msg, sizeof msg, "unexpected key \"%.80s\" in entry", it->string);
            return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
        }
        if (*slot) {
            snprintf(msg, sizeof msg, "key \"%s\" appears twice", it->string);
            return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
        }
        *slot = it;
    }
    if (!jd || !js || !jo) {
        snprintf(msg, sizeof msg, "entry lacks \"%s\"", !jd ? "dtype" : !js ? "shape" : "data_offsets");
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
    }

    /* dtype */
    if (!cJSON_IsString(jd))
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, "dtype is not a string");
    qp_status st = qp_st_dtype_from_name(jd->valuestring, &t->dtype);
    if (st != QP_OK) {
        snprintf(msg, sizeof msg, st == QP_ERR_UNSUPPORTED ? "dtype %.40s is not supported"
                                                           : "unknown dtype \"%.40s\"",
                 jd->valuestring);
        return entry_err(err, st, path, name, msg);
    }

    /* shape: element count and byte size, every product overflow-checked */
    if (!cJSON_IsArray(js))
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, "shape is not an array");
    int nd = 0;
    uint64_t n_elems = 1;
    for (const cJSON *d = js->child; d; d = d->next) {
        if (nd == QP_ST_MAX_DIMS) {
            snprintf(msg, sizeof msg, "shape has more than %d dimensions", QP_ST_MAX_DIMS);
            return entry_err(err, QP_ERR_UNSUPPORTED, path, name, msg);
        }
        char what[32];
        snprintf(what, sizeof what, "shape[%d]", nd);
        uint64_t dim;
        if ((st = get_uint(d, what, path, name, &dim, err)) != QP_OK)
            return st;
        if (!qp_mul_u64(n_elems, dim, &n_elems))
            return entry_err(err, QP_ERR_BAD_INPUT, path, name, "shape product overflows 64 bits");
        t->shape[nd++] = (int64_t)dim;
    }
    t->n_dims = nd;
    t->n_elems = n_elems;
    if (!qp_mul_u64(n_elems, qp_st_dtype_size(t->dtype), &t->nbytes))
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, "byte size (shape product x dtype size) overflows 64 bits");

    /* data_offsets: exactly [start, end] */
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, "data_offsets is not an array of two integers");
    uint64_t start, end;
    if ((st = get_uint(jo->child, "data_offsets[0]", path, name, &start, err)) != QP_OK)
        return st;
    if ((st = get_uint(jo->child->next, "data_offsets[1]", path, name, &end, err)) != QP_OK)
        return st;
    if (start > end) {
        snprintf(msg, sizeof msg, "data_offsets start %llu > end %llu", (unsigned long long)start,
                 (unsigned long long)end);
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
    }
    if (end > data_size) {
        snprintf(msg, sizeof msg, "data_offsets [%llu, %llu) out of range: data region is %llu bytes",
                 (unsigned long long)start, (unsigned long long)end, (unsigned long long)data_size);
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
    }
    if (end - start != t->nbytes) {
        snprintf(msg, sizeof msg, "byte size mismatch: data_offsets span %llu bytes, %s x shape needs %llu",
                 (unsigned long long)(end - start), qp_st_dtype_name(t->dtype),
                 (unsigned long long)t->nbytes);
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, msg);
    }
    if (!qp_add_u64(data_base, start, &t->file_offset))
        return entry_err(err, QP_ERR_BAD_INPUT, path, name, "file offset overflows 64 bits");
    return QP_OK;
}

static qp_status parse_metadata(const cJSON *m, const char *path, qp_st_header *h, qp_err *err)
{
    if (!cJSON_IsObject(m))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "__metadata__ is not a JSON object");
    size_t n = (size_t)cJSON_GetArraySize(m);
    h->meta_keys = calloc(n ? n : 1, sizeof *h->meta_keys);
    h->meta_vals = calloc(n ? n : 1, sizeof *h->meta_vals);
    if (!h->meta_keys || !h->meta_vals)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for __metadata__");
    for (const cJSON *it = m->child; it; it = it->next) {
        if (!cJSON_IsString(it)) {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "__metadata__ value of \"%.80s\" is not a string",
                       it->string);
            qp_err_set_tensor(err, it->string);
            return QP_ERR_BAD_INPUT;
        }
        char *k = strdup(it->string), *v = strdup(it->valuestring);
        if (!k || !v) {
            free(k);
            free(v);
            return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for __metadata__");
        }
        h->meta_keys[h->n_meta] = k;
        h->meta_vals[h->n_meta] = v;
        h->n_meta++;
    }
    return QP_OK;
}

typedef struct {
    uint64_t start, end;
    size_t idx;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sort by start and compare each range with the furthest end seen so far.
 * Empty tensors occupy no bytes and cannot overlap anything. */
static qp_status check_overlaps(const qp_st_header *h, uint64_t data_base, const char *path, qp_err *err)
{
    if (h->n_tensors < 2)
        return QP_OK;
    span *s = malloc(h->n_tensors * sizeof *s);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory checking tensor ranges");
    size_t n = 0;
    for (size_t i = 0; i < h->n_tensors; i++) {
        if (h->tensors[i].nbytes == 0)
            continue;
        s[n].start = h->tensors[i].file_offset - data_base;
        s[n].end = s[n].start + h->tensors[i].nbytes;
        s[n].idx = i;
        n++;
    }
    qsort(s, n, sizeof *s, span_cmp);
    qp_status st = QP_OK;
    size_t far = 0; /* index in s of the range reaching furthest so far */
    for (size_t i = 1; i < n; i++) {
        if (s[i].start < s[far].end) {
            const char *a = h->tensors[s[far].idx].name, *b = h->tensors[s[i].idx].name;
            qp_err_set(err, QP_ERR_BAD_INPUT, path,
                       "tensor \"%.150s\" data_offsets [%llu, %llu) overlap tensor \"%.150s\" [%llu, %llu)", b,
                       (unsigned long long)s[i].start, (unsigned long long)s[i].end, a,
                       (unsigned long long)s[far].start, (unsigned long long)s[far].end);
            qp_err_set_tensor(err, b);
            st = QP_ERR_BAD_INPUT;
            break;
        }
        if (s[i].end > s[far].end)
            far = i;
    }
    free(s);
    return st;
}

static int name_cmp(const void *a, const void *b)
{
    const qp_st_tensor *x = *(const qp_st_tensor *const *)a, *y = *(const qp_st_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x < y ? -1 : x > y; /* header order among equals */
}

/* cJSON keeps every copy of a repeated key; a name given twice would make
 * the tensor ambiguous. */
static qp_status check_duplicates(const qp_st_header *h, const char *path, qp_err *err)
{
    if (h->n_tensors < 2)
        return QP_OK;
    const qp_st_tensor **v = malloc(h->n_tensors * sizeof *v);
    if (!v)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory checking tensor names");
    for (size_t i = 0; i < h->n_tensors; i++)
        v[i] = &h->tensors[i];
    qsort(v, h->n_tensors, sizeof *v, name_cmp);
    qp_status st = QP_OK;
    for (size_t i = 1; i < h->n_tensors; i++) {
        if (strcmp(v[i - 1]->name, v[i]->name) == 0) {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "duplicate tensor name \"%.200s\"", v[i]->name);
            qp_err_set_tensor(err, v[i]->name);
            st = QP_ERR_BAD_INPUT;
            break;
        }
    }
    free(v);
    return st;
}

static qp_status parse_tree(const cJSON *root, uint64_t data_size, uint64_t data_base, int file_index,
                            const char *path, qp_st_header *h, qp_err *err)
{
    if (!cJSON_IsObject(root))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "header is not a JSON object");
    size_t n = 0;
    int have_meta = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (strcmp(it->string, "__metadata__") != 0)
            n++;
        else if (have_meta++)
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "__metadata__ appears twice");
    }
    h->tensors = calloc(n ? n : 1, sizeof *h->tensors);
    if (!h->tensors)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for %zu tensors", n);
    for (const cJSON *it = root->child; it; it = it->next) {
        qp_status st;
        if (strcmp(it->string, "__metadata__") == 0) {
            if ((st = parse_metadata(it, path, h, err)) != QP_OK)
                return st;
            continue;
        }
        if (it->string[0] == '\0')
            return qp_err_set(err, QP_ERR_BAD_INPUT, path, "tensor with an empty name");
        qp_st_tensor *t = &h->tensors[h->n_tensors];
        memset(t, 0, sizeof *t);
        if ((st = parse_entry(it, it->string, data_size, data_base, path, t, err)) != QP_OK)
            return st;
        t->file_index = file_index;
        if (!(t->name = strdup(it->string)))
            return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for tensor names");
        h->n_tensors++;
    }
    qp_status st = check_duplicates(h, path, err);
    if (st != QP_OK)
        return st;
    return check_overlaps(h, data_base, path, err);
}

qp_status qp_st_header_parse(const char *json, size_t json_len, uint64_t data_size, uint64_t data_base,
                             int file_index, const char *path, qp_st_header *out, qp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!json && json_len)
        return qp_err_set(err, QP_ERR_USAGE, path, "NULL header buffer");
    if (json_len > QP_ST_MAX_HEADER)
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "header length %zu exceeds the 100 MB limit", json_len);
    qp_status st = check_text(json ? json : "", json_len, path, err);
    if (st != QP_OK)
        return st;

    /* cJSON wants the text NUL-terminated to be safe on every version; the
     * caller's buffer need not be, so parse a copy. */
    char *text = malloc(json_len + 1);
    if (!text)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory for a %zu-byte header", json_len);
    if (json_len)
        memcpy(text, json, json_len);
    text[json_len] = '\0';

    const char *end = NULL;
    int oom = 0;
    cJSON *root = qp_json_parse(text, json_len, &end, &oom);
    if (!root && oom) {
        free(text);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory parsing a %zu-byte header", json_len);
    }
    if (!root) {
        size_t pos = end && end >= text ? (size_t)(end - text) : 0;
        if (nesting_exceeds(text, pos + 1 <= json_len ? pos + 1 : json_len, CJSON_NESTING_LIMIT))
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "header JSON nests deeper than %d levels",
                       CJSON_NESTING_LIMIT);
        else
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "header is not valid JSON (error near header offset %zu)",
                       pos);
        qp_err_set_offset(err, (int64_t)(8 + pos));
        free(text);
        return QP_ERR_BAD_INPUT;
    }
    /* The format pads headers with spaces; anything else after the object
     * means the length prefix and the JSON disagree. */
    for (const char *p = end; p < text + json_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "trailing bytes after the header JSON at header offset %zu",
                       (size_t)(p - text));
            qp_err_set_offset(err, (int64_t)(8 + (p - text)));
            cJSON_Delete(root);
            free(text);
            return QP_ERR_BAD_INPUT;
        }
    }
    st = parse_tree(root, data_size, data_base, file_index, path, out, err);
    cJSON_Delete(root);
    free(text);
    if (st != QP_OK)
        qp_st_header_free(out);
    return st;
}

qp_status qp_st_validate_header(const char *json, size_t json_len, uint64_t data_size,
                                const char *path_for_errors, qp_err *err)
{
    qp_st_header h;
    uint64_t base;
    if (!qp_add_u64(8, json_len, &base))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path_for_errors, "header length overflows");
    qp_status st = qp_st_header_parse(json, json_len, data_size, base, 0, path_for_errors, &h, err);
    if (st == QP_OK)
        qp_st_header_free(&h);
    return st;
}
