/* hfc_json.c - typed reads of config.json values (see hfc_json.h). */
#include "format/hfc_json.h"
#include "format/qp_json.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

qp_status hfc_err(qp_err *err, qp_status status, const char *path, const char *key, const char *what)
{
    qp_err_set(err, status, path, "key \"%.120s\" %s", key, what);
    qp_err_set_tensor(err, key);
    return status;
}

static const char *type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsNumber(v))
        return "a number";
    return "something else";
}

int hfc_number_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    const double lim = 9007199254740992.0; /* 2^53: beyond it doubles skip integers */
    if (!(d >= -lim && d <= lim) || d != floor(d))
        return 0;
    *out = (int64_t)d;
    return 1;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

qp_status hfc_int(const cJSON *obj, const char *key, const char *path, int64_t lo, int64_t hi, int64_t dflt,
                  int64_t *out, qp_err *err)
{
    const cJSON *v = get(obj, key);
    char what[160];
    if (!v) {
        if (dflt == HFC_REQUIRED)
            return hfc_err(err, QP_ERR_BAD_INPUT, path, key, "is missing");
        *out = dflt;
        return QP_OK;
    }
    int64_t x;
    if (!cJSON_IsNumber(v)) {
        snprintf(what, sizeof what, "must be an integer, got %s", type_name(v));
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    if (!hfc_number_int(v, &x)) {
        snprintf(what, sizeof what, "must be an integer, got %.17g", v->valuedouble);
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    if (x < lo || x > hi) {
        snprintf(what, sizeof what, "= %lld is out of range [%lld, %lld]", (long long)x, (long long)lo,
                 (long long)hi);
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    *out = x;
    return QP_OK;
}

qp_status hfc_double(const cJSON *obj, const char *key, const char *path, double lo, double hi, double dflt,
                     double *out, qp_err *err)
{
    const cJSON *v = get(obj, key);
    char what[160];
    if (!v) {
        *out = dflt;
        return QP_OK;
    }
    if (!cJSON_IsNumber(v)) {
        snprintf(what, sizeof what, "must be a number, got %s", type_name(v));
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    double d = v->valuedouble;
    if (!(d > lo && d <= hi)) {
        snprintf(what, sizeof what, "= %.17g is out of range (%g, %g]", d, lo, hi);
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    *out = d;
    return QP_OK;
}

qp_status hfc_bool(const cJSON *obj, const char *key, const char *path, int *out, qp_err *err)
{
    const cJSON *v = get(obj, key);
    if (!v)
        return QP_OK;
    if (!cJSON_IsBool(v)) {
        char what[96];
        snprintf(what, sizeof what, "must be true or false, got %s", type_name(v));
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    *out = cJSON_IsTrue(v);
    return QP_OK;
}

qp_status hfc_string(const cJSON *obj, const char *key, const char *path, char *buf, size_t size, qp_err *err)
{
    const cJSON *v = get(obj, key);
    if (!v)
        return QP_OK;
    char what[96];
    if (!cJSON_IsString(v)) {
        snprintf(what, sizeof what, "must be a string, got %s", type_name(v));
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    if (strlen(v->valuestring) >= size) {
        snprintf(what, sizeof what, "is longer than %zu bytes", size - 1);
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, what);
    }
    snprintf(buf, size, "%s", v->valuestring);
    return QP_OK;
}

qp_status hfc_parse_text(const char *json, size_t len, const char *path, cJSON **out, qp_err *err)
{
    *out = NULL;
    if (memchr(json, '\0', len))
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "contains a NUL byte; not JSON text");
    char *text = malloc(len + 1);
    if (!text)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    if (len)
        memcpy(text, json, len);
    text[len] = '\0';
    const char *end = NULL;
    int oom = 0;
    cJSON *root = qp_json_parse(text, len, &end, &oom);
    size_t pos = end && end >= text ? (size_t)(end - text) : 0;
    qp_status st = QP_OK;
    if (!root && oom) {
        st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory parsing %zu bytes of JSON", len);
    } else if (!root) {
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "not valid JSON (error near byte %zu, nesting limit %d)", pos,
                        CJSON_NESTING_LIMIT);
        qp_err_set_offset(err, (int64_t)pos);
    } else {
        for (const char *p = end; p < text + len; p++) {
            if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
                st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "trailing bytes after the JSON value at byte %zu",
                                (size_t)(p - text));
                qp_err_set_offset(err, (int64_t)(p - text));
                cJSON_Delete(root);
                root = NULL;
                break;
            }
        }
    }
    free(text);
    *out = root;
    return st;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

qp_status hfc_check_unique_keys(const cJSON *obj, const char *path, qp_err *err)
{
    size_t n = 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        n++;
    if (n < 2)
        return QP_OK;
    const char **k = malloc(n * sizeof *k);
    if (!k)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    n = 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        k[n++] = it->string;
    qsort(k, n, sizeof *k, key_cmp);
    qp_status st = QP_OK;
    for (size_t i = 1; i < n && st == QP_OK; i++)
        if (strcmp(k[i - 1], k[i]) == 0)
            st = hfc_err(err, QP_ERR_BAD_INPUT, path, k[i], "appears twice");
    free(k);
    return st;
}

qp_status hfc_read_file(const char *path, size_t max, char **text, size_t *len, qp_err *err)
{
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qp_err_io(err, path, errno, "cannot open");
    struct stat sb;
    qp_status st = QP_OK;
    if (fstat(fd, &sb) != 0)
        st = qp_err_io(err, path, errno, "cannot stat");
    else if (!S_ISREG(sb.st_mode))
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "not a regular file");
    else if ((uint64_t)sb.st_size > max)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, path, "file is %llu bytes, over the %zu-byte limit",
                        (unsigned long long)sb.st_size, max);
    char *buf = NULL;
    size_t n = 0;
    if (st == QP_OK && !(buf = malloc((size_t)sb.st_size + 1)))
        st = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    while (st == QP_OK && n < (size_t)sb.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)sb.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            st = qp_err_io(err, path, errno, "read failed");
        else if (r == 0)
            st = qp_err_set(err, QP_ERR_IO, path, "file shrank while being read");
        else
            n += (size_t)r;
    }
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

void hfc_add_unknown(qp_hf_config *cfg, const char *key)
{
    char *u = cfg->unknown_keys;
    size_t cap = sizeof cfg->unknown_keys, len = strlen(u);
    if (len >= 3 && strcmp(u + len - 3, "...") == 0)
        return; /* already full */
    size_t need = strlen(key) + (len ? 1 : 0);
    if (len + need + 4 >= cap) { /* keep room for ",..." */
        snprintf(u + len, cap - len, "%s...", len ? "," : "");
        return;
    }
    snprintf(u + len, cap - len, "%s%s", len ? "," : "", key);
}
