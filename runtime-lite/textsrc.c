/* textsrc.c - evaluation text: plain or JSON Lines, gzip/zlib or zstd. */
#include "runtime-lite/textsrc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* A growing byte buffer, always NUL-terminated. */
typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra)
{
    if (extra > QP_TEXT_MAX_BYTES - b->len)
        return 0;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *n = realloc(b->p, cap);
    if (!n)
        return 0;
    b->p = n;
    b->cap = cap;
    return 1;
}

static int buf_append(buf_t *b, const void *data, size_t n)
{
    if (!buf_reserve(b, n))
        return 0;
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 1;
}

static qp_status too_big_or_nomem(const buf_t *b, size_t extra, const char *name, qp_err *err)
{
    if (extra > QP_TEXT_MAX_BYTES - b->len)
        return qp_err_set(err, QP_ERR_BAD_INPUT, name, "text larger than %zu bytes", QP_TEXT_MAX_BYTES);
    return qp_err_set(err, QP_ERR_NOMEM, name, "out of memory reading text");
}

static qp_status inflate_all(const uint8_t *data, size_t size, const char *name, buf_t *out, qp_err *err)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) /* +32: gzip or zlib header */
        return qp_err_set(err, QP_ERR_NOMEM, name, "cannot start zlib");
    size_t pos = 0; /* input bytes handed to zlib so far */
    qp_status st = QP_OK;
    int ended = 0;
    for (;;) {
        if (zs.avail_in == 0 && pos < size) {
            const size_t chunk = size - pos > (1u << 30) ? (1u << 30) : size - pos;
            zs.next_in = (Bytef *)(uintptr_t)(data + pos);
            zs.avail_in = (uInt)chunk;
            pos += chunk;
        }
        if (!buf_reserve(out, 1 << 16)) {
            st = too_big_or_nomem(out, 1 << 16, name, err);
            break;
        }
        zs.next_out = (Bytef *)(out->p + out->len);
        zs.avail_out = (uInt)(out->cap - out->len - 1);
        const uInt before = zs.avail_out;
        const int rc = inflate(&zs, Z_NO_FLUSH);
        out->len += before - zs.avail_out;
        if (rc == Z_STREAM_END) {
            ended = 1;
            if (zs.avail_in == 0 && pos >= size)
                break;
            /* concatenated gzip members: go on with the next one */
            if (inflateReset(&zs) != Z_OK) {
                st = qp_err_set(err, QP_ERR_INTERNAL, name, "zlib reset failed");
                break;
            }
            ended = 0;
            continue;
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0 && pos >= size)
            break; /* no more input: truncated (ended == 0) */
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, name, "corrupt compressed data (%s)",
                            zs.msg ? zs.msg : "zlib error");
            qp_err_set_offset(err, (int64_t)(pos - zs.avail_in));
            break;
        }
    }
    if (st == QP_OK && !ended)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, name, "compressed data is truncated");
    inflateEnd(&zs);
    if (out->p)
        out->p[out->len] = '\0';
    return st;
}

static qp_status unzstd_all(const uint8_t *data, size_t size, const char *name, buf_t *out, qp_err *err)
{
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds)
        return qp_err_set(err, QP_ERR_NOMEM, name, "cannot start zstd");
    ZSTD_inBuffer in = {data, size, 0};
    qp_status st = QP_OK;
    size_t rc = 1;
    while (in.pos < in.size) {
        if (!buf_reserve(out, 1 << 16)) {
            st = too_big_or_nomem(out, 1 << 16, name, err);
            break;
        }
        ZSTD_outBuffer ob = {out->p + out->len, out->cap - out->len - 1, 0};
        rc = ZSTD_decompressStream(ds, &ob, &in);
        out->len += ob.pos;
        if (ZSTD_isError(rc)) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, name, "corrupt zstd data (%s)", ZSTD_getErrorName(rc));
            qp_err_set_offset(err, (int64_t)in.pos);
            break;
        }
        if (ob.pos == 0 && in.pos == in.size)
            break;
    }
    /* rc != 0 at the end means a frame was cut short */
    if (st == QP_OK && rc != 0)
        st = qp_err_set(err, QP_ERR_BAD_INPUT, name, "zstd data is truncated");
    ZSTD_freeDStream(ds);
    if (out->p)
        out->p[out->len] = '\0';
    return st;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return 0;
    return 1;
}

static qp_status jsonl_extract(const char *src, size_t n, const char *field, const char *name, buf_t *out,
                               qp_err *err)
{
    size_t pos = 0;
    int64_t line_no = 0, docs = 0;
    while (pos < n) {
        const char *line = src + pos;
        const char *nl = memchr(line, '\n', n - pos);
        const size_t len = nl ? (size_t)(nl - line) : n - pos;
        line_no++;
        const size_t line_start = pos;
        pos += len + (nl ? 1 : 0);
        if (is_blank(line, len))
            continue;
        cJSON *obj = cJSON_ParseWithLength(line, len);
        if (!obj || !cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            qp_status st = qp_err_set(err, QP_ERR_BAD_INPUT, name, "line %lld is not a JSON object",
                                      (long long)line_no);
            qp_err_set_offset(err, (int64_t)line_start);
            return st;
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, field);
        if (!cJSON_IsString(f)) {
            cJSON_Delete(obj);
            qp_status st = qp_err_set(err, QP_ERR_BAD_INPUT, name, "line %lld has no string field \"%s\"",
                                      (long long)line_no, field);
            qp_err_set_offset(err, (int64_t)line_start);
            return st;
        }
        const size_t flen = strlen(f->valuestring);
        int ok = (docs == 0 || buf_append(out, "\n\n", 2)) && buf_append(out, f->valuestring, flen);
        cJSON_Delete(obj);
        if (!ok)
            return too_big_or_nomem(out, flen + 2, name, err);
        docs++;
    }
    if (docs == 0)
        return qp_err_set(err, QP_ERR_BAD_INPUT, name, "no JSON Lines documents with field \"%s\"", field);
    return QP_OK;
}

static int name_ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), s = strlen(suffix);
    return n >= s && strcmp(name + n - s, suffix) == 0;
}

qp_status qp_text_from_memory(const void *data, size_t size, const char *field, const char *name,
                              char **text, size_t *len, qp_err *err)
{
    *text = NULL;
    *len = 0;
    const uint8_t *d = data;
    const char *label = name ? name : "(text)";
    buf_t raw = {0}, out = {0};
    qp_status st = QP_OK;
    const void *src = data;
    size_t src_len = size;
    /* gzip always starts 1f 8b; a bare zlib stream (78 xx) is only trusted
     * with a .gz/.zz name, since plain text may begin with "x^". */
    const int gzip = size >= 2 && d[0] == 0x1f && d[1] == 0x8b;
    const int zlib = size >= 2 && d[0] == 0x78 && ((d[0] << 8) | d[1]) % 31 == 0 && name &&
                     (name_ends_with(name, ".gz") || name_ends_with(name, ".zz"));
    const int zstd = size >= 4 && d[0] == 0x28 && d[1] == 0xb5 && d[2] == 0x2f && d[3] == 0xfd;
    if (gzip || zlib)
        st = inflate_all(d, size, label, &raw, err);
    else if (zstd)
        st = unzstd_all(d, size, label, &raw, err);
    if (st != QP_OK)
        goto fail;
    if (gzip || zlib || zstd) {
        src = raw.p ? raw.p : "";
        src_len = raw.len;
    }
    if (field) {
        st = jsonl_extract(src, src_len, field, label, &out, err);
        if (st != QP_OK)
            goto fail;
        free(raw.p);
    } else if (gzip || zlib || zstd) {
        out = raw;
        if (!out.p && !buf_reserve(&out, 0)) {
            st = qp_err_set(err, QP_ERR_NOMEM, label, "out of memory");
            goto fail;
        }
    } else {
        if (!buf_append(&out, data, size) || !buf_reserve(&out, 0)) {
            st = too_big_or_nomem(&out, size, label, err);
            goto fail;
        }
    }
    *text = out.p;
    *len = out.len;
    return QP_OK;
fail:
    free(raw.p);
    free(out.p);
    return st;
}

qp_status qp_text_load(const char *path, const char *field, char **text, size_t *len, qp_err *err)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return qp_err_io(err, path, errno, "cannot open text");
    buf_t b = {0};
    char chunk[1 << 16];
    size_t n;
    qp_status st = QP_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (!buf_append(&b, chunk, n)) {
            st = too_big_or_nomem(&b, n, path, err);
            break;
        }
    }
    if (st == QP_OK && ferror(f))
        st = qp_err_io(err, path, errno, "read failed");
    fclose(f);
    if (st == QP_OK)
        st = qp_text_from_memory(b.p ? b.p : "", b.len, field, path, text, len, err);
    free(b.p);
    return st;
}
