/* gguf_reader.c - validating GGUF v2/v3 reader over a read-only mapping.
 *
 * Every count, length, dimension, type id and offset is checked against the
 * bytes that remain before it is used or allocated for (the ggml CVEs
 * CVE-2024-21802 and CVE-2024-23605 came from trusting these fields).
 * Tables grow as entries are actually parsed, so a header that claims
 * billions of entries cannot make us allocate before it runs out of bytes. */
#include "format/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qp_checked.h"
#include "common/qp_crash_files.h"
#include "common/qp_ggml_types.h"
#include "format/gguf_reader_impl.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define HEADER_BYTES 24u        /* magic, version, n_tensors, n_kv */
#define MIN_KV_BYTES 14u        /* key len 8 + 1 byte key + type 4 + 1 byte value */
#define MIN_TENSOR_BYTES 33u    /* name len 8 + 1 byte + n_dims 4 + ne 8 + type 4 + offset 8 */
#define MAX_ARRAY_DEPTH 4       /* nesting of arrays of arrays we accept */

/* ---------------------------------------------------------------- cursor */

typedef struct {
    qp_gguf *g;
    uint64_t pos;
    qp_err *err;
    char where[200]; /* "key 'x'" or "tensor 3 'y'": prefixes low-level read errors */
    int64_t elem;    /* array element being read, -1 outside arrays */
} cursor;

static uint64_t remaining(const cursor *c)
{
    return c->g->size - c->pos;
}

/* Names from the file go into one-line messages: replace control bytes and
 * cut long ones. */
static const char *printable(const char *p, uint64_t len, char *buf, size_t size)
{
    size_t n = 0;
    uint64_t i;
    for (i = 0; i < len && n + 4 < size; i++) {
        unsigned char ch = (unsigned char)p[i];
        buf[n++] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    if (i < len) {
        buf[n++] = '.';
        buf[n++] = '.';
        buf[n++] = '.';
    }
    buf[n] = '\0';
    return buf;
}

static qp_status fail_at(cursor *c, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static qp_status fail_at(cursor *c, uint64_t off, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qp_err_set(c->err, QP_ERR_BAD_INPUT, c->g->path, "%s", msg);
    qp_err_set_offset(c->err, off > INT64_MAX ? -1 : (int64_t)off);
    return QP_ERR_BAD_INPUT;
}

static qp_status nomem(cursor *c)
{
    return qp_err_set(c->err, QP_ERR_NOMEM, c->g->path, "out of memory indexing GGUF header");
}

/* "key 'x': array element 5: <what>" for messages of the readers below. */
static const char *describe(const cursor *c, const char *what, char *buf, size_t size)
{
    char el[40] = "";
    if (c->elem >= 0)
        snprintf(el, sizeof el, "array element %lld: ", (long long)c->elem);
    snprintf(buf, size, "%s%s%s%s", c->where, c->where[0] ? ": " : "", el, what);
    return buf;
}

static qp_status rd_u32(cursor *c, const char *what, uint32_t *v)
{
    char d[300];
    if (remaining(c) < 4)
        return fail_at(c, c->pos, "%s: truncated, need 4 bytes, %llu left",
                       describe(c, what, d, sizeof d), (unsigned long long)remaining(c));
    *v = qp_gguf_le32(c->g->base + c->pos);
    c->pos += 4;
    return QP_OK;
}

static qp_status rd_u64(cursor *c, const char *what, uint64_t *v)
{
    char d[300];
    if (remaining(c) < 8)
        return fail_at(c, c->pos, "%s: truncated, need 8 bytes, %llu left",
                       describe(c, what, d, sizeof d), (unsigned long long)remaining(c));
    *v = qp_gguf_le64(c->g->base + c->pos);
    c->pos += 8;
    return QP_OK;
}

/* A gguf string: u64 length, then that many bytes (no NUL). */
static qp_status rd_str(cursor *c, const char *what, qp_gguf_str *s)
{
    uint64_t at = c->pos, len = 0;
    qp_status st = rd_u64(c, what, &len);
    if (st)
        return st;
    if (len > remaining(c)) {
        char d[300];
        return fail_at(c, at, "%s: string length %llu past end of file (%llu bytes left)",
                       describe(c, what, d, sizeof d), (unsigned long long)len,
                       (unsigned long long)remaining(c));
    }
    s->ptr = (const char *)c->g->base + c->pos;
    s->len = len;
    c->pos += len;
    return QP_OK;
}

/* ---------------------------------------------------------------- values */

static const char *const VTYPE_NAMES[QP_GGUF_VTYPE_COUNT] = {
    "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32",
    "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64",
};
static const uint8_t VTYPE_SIZES[QP_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *qp_gguf_vtype_name(qp_gguf_vtype t)
{
    return (unsigned)t < QP_GGUF_VTYPE_COUNT ? VTYPE_NAMES[t] : "?";
}

uint32_t qp_gguf_vtype_size(qp_gguf_vtype t)
{
    return (unsigned)t < QP_GGUF_VTYPE_COUNT ? VTYPE_SIZES[t] : 0;
}

/* Skip over one array body (elem type + count + elements) nested inside
 * another array, checking it; `depth` counts the enclosing arrays. */
static qp_status skip_array(cursor *c, const char *key, int depth);

static qp_status skip_elems(cursor *c, const char *key, uint32_t et, uint64_t n, uint64_t at,
                            int depth)
{
    uint32_t esz = qp_gguf_vtype_size((qp_gguf_vtype)et);
    if (esz) {
        uint64_t bytes;
        if (!qp_mul_u64(n, esz, &bytes) || bytes > remaining(c))
            return fail_at(c, at, "key '%s': array length %llu of %s past end of file "
                           "(%llu bytes left)", key, (unsigned long long)n,
                           qp_gguf_vtype_name((qp_gguf_vtype)et), (unsigned long long)remaining(c));
        c->pos += bytes;
        return QP_OK;
    }
    /* Variable-size elements: each needs at least its 8 (string) or 12
     * (array) header bytes, which bounds n before the loop. */
    uint64_t min = et == QP_GGUF_STRING ? 8 : 12;
    if (n > remaining(c) / min)
        return fail_at(c, at, "key '%s': array length %llu past end of file (%llu bytes left)",
                       key, (unsigned long long)n, (unsigned long long)remaining(c));
    for (uint64_t j = 0; j < n; j++) {
        qp_status st;
        if (et == QP_GGUF_STRING) {
            qp_gguf_str s;
            c->elem = (int64_t)j;
            st = rd_str(c, "string", &s);
            c->elem = -1;
        } else {
            st = skip_array(c, key, depth + 1);
        }
        if (st)
            return st;
    }
    return QP_OK;
}

static qp_status skip_array(cursor *c, const char *key, int depth)
{
    uint64_t at = c->pos, n = 0;
    uint32_t et = 0;
    qp_status st;
    if (depth > MAX_ARRAY_DEPTH)
        return fail_at(c, at, "key '%s': arrays nested deeper than %d", key, MAX_ARRAY_DEPTH);
    if ((st = rd_u32(c, "array element type", &et)) || (st = rd_u64(c, "array length", &n)))
        return st;
    if (et >= QP_GGUF_VTYPE_COUNT)
        return fail_at(c, at, "key '%s': unknown array element type %u", key, et);
    return skip_elems(c, key, et, n, at + 4, depth);
}

static qp_status parse_array(cursor *c, gguf_kv *kv, const char *key)
{
    uint64_t at = c->pos, n = 0;
    uint32_t et = 0;
    qp_status st;
    if ((st = rd_u32(c, "array element type", &et)) || (st = rd_u64(c, "array length", &n)))
        return st;
    if (et >= QP_GGUF_VTYPE_COUNT)
        return fail_at(c, at, "key '%s': unknown array element type %u", key, et);
    kv->arr_type = (qp_gguf_vtype)et;
    kv->arr_len = n;
    kv->val = c->g->base + c->pos;
    if (et != QP_GGUF_STRING)
        return skip_elems(c, key, et, n, at + 4, 1);

    /* String arrays are indexed so element j is O(1). Each element takes at
     * least 8 bytes of file, so the index is at most the file's size. */
    if (n > remaining(c) / 8)
        return fail_at(c, at + 4, "key '%s': array length %llu past end of file "
                       "(%llu bytes left)", key, (unsigned long long)n,
                       (unsigned long long)remaining(c));
    kv->str_offs = malloc(n ? (size_t)n * sizeof *kv->str_offs : 1);
    if (!kv->str_offs)
        return nomem(c);
    for (uint64_t j = 0; j < n; j++) {
        qp_gguf_str s;
        kv->str_offs[j] = c->pos;
        c->elem = (int64_t)j;
        if ((st = rd_str(c, "string", &s)))
            return st;
    }
    c->elem = -1;
    return QP_OK;
}

static qp_status parse_value(cursor *c, gguf_kv *kv, const char *key)
{
    qp_status st;
    uint32_t type = 0;
    uint64_t type_off = c->pos;
    if ((st = rd_u32(c, "value type", &type)))
        return st;
    if (type >= QP_GGUF_VTYPE_COUNT)
        return fail_at(c, type_off, "key '%s': unknown value type %u", key, type);
    kv->type = (qp_gguf_vtype)type;
    if (type == QP_GGUF_STRING)
        return rd_str(c, "string value", &kv->str);
    if (type == QP_GGUF_ARRAY)
        return parse_array(c, kv, key);
    uint32_t sz = VTYPE_SIZES[type];
    if (remaining(c) < sz)
        return fail_at(c, c->pos, "key '%s': %s value truncated (%llu bytes left)", key,
                       VTYPE_NAMES[type], (unsigned long long)remaining(c));
    kv->val = c->g->base + c->pos;
    c->pos += sz;
    return QP_OK;
}

static qp_status parse_kv(cursor *c, gguf_kv *kv)
{
    char kbuf[160];
    qp_status st;
    kv->key_off = c->pos;
    snprintf(c->where, sizeof c->where, "key %lld", (long long)c->g->n_kv - 1);
    st = rd_str(c, "name", &kv->key);
    c->where[0] = '\0';
    if (st)
        return st;
    if (kv->key.len == 0)
        return fail_at(c, kv->key_off, "key %lld is empty", (long long)c->g->n_kv - 1);
    const char *key = printable(kv->key.ptr, kv->key.len, kbuf, sizeof kbuf);
    snprintf(c->where, sizeof c->where, "key '%s'", key);
    st = parse_value(c, kv, key);
    c->where[0] = '\0';
    return st;
}

/* ---------------------------------------------------------------- header */

static qp_gguf_str kv_name(const void *ctx, int64_t i)
{
    return ((const qp_gguf *)ctx)->kvs[i].key;
}

static qp_gguf_str tensor_name(const void *ctx, int64_t i)
{
    return ((const qp_gguf *)ctx)->tensors[i].name;
}

static qp_status parse_kvs(cursor *c, uint64_t n_kv)
{
    qp_gguf *g = c->g;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (g->n_kv == g->cap_kv) {
            int64_t cap = g->cap_kv ? g->cap_kv * 2 : 32;
            gguf_kv *k = realloc(g->kvs, (size_t)cap * sizeof *k);
            if (!k)
                return nomem(c);
            g->kvs = k;
            g->cap_kv = cap;
        }
        gguf_kv *kv = &g->kvs[g->n_kv];
        memset(kv, 0, sizeof *kv);
        g->n_kv++; /* counted before parsing so close() frees a partial index */
        qp_status st = parse_kv(c, kv);
        if (st)
            return st;
    }
    if (qp_gguf_index_init(&g->kv_ix, (uint64_t)g->n_kv, kv_name, g) != 0)
        return nomem(c);
    for (int64_t i = 0; i < g->n_kv; i++) {
        int64_t prev = qp_gguf_index_insert(&g->kv_ix, i);
        if (prev == -2)
            return nomem(c);
        if (prev >= 0) {
            char kbuf[160];
            return fail_at(c, g->kvs[i].key_off, "duplicate key '%s' (entries %lld and %lld)",
                           printable(g->kvs[i].key.ptr, g->kvs[i].key.len, kbuf, sizeof kbuf),
                           (long long)prev, (long long)i);
        }
    }
    return QP_OK;
}

static qp_status read_alignment(cursor *c)
{
    qp_gguf *g = c->g;
    int64_t i = qp_gguf_find_key(g, "general.alignment");
    g->alignment = QP_GGUF_DEFAULT_ALIGNMENT;
    if (i < 0)
        return QP_OK;
    const gguf_kv *kv = &g->kvs[i];
    if (kv->type != QP_GGUF_U32)
        return fail_at(c, kv->key_off, "general.alignment has type %s, must be UINT32",
                       qp_gguf_vtype_name(kv->type));
    uint32_t a = qp_gguf_le32(kv->val);
    if (a == 0 || (a & (a - 1)) != 0)
        return fail_at(c, kv->key_off, "general.alignment %u is not a power of two", a);
    g->alignment = a;
    return QP_OK;
}

static qp_status parse_tensor_fields(cursor *c, qp_gguf_tensor *t, const char *name)
{
    qp_status st;
    uint64_t dims_off = c->pos;
    if ((st = rd_u32(c, "n_dims", &t->n_dims)))
        return st;
    if (t->n_dims == 0 || t->n_dims > QP_GGUF_MAX_DIMS)
        return fail_at(c, dims_off, "tensor '%s': n_dims %u out of range 1..%d", name,
                       t->n_dims, QP_GGUF_MAX_DIMS);
    uint64_t n_elems = 1;
    for (uint32_t d = 0; d < QP_GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1, ne_off = c->pos;
        if (d < t->n_dims && (st = rd_u64(c, "ne", &ne)))
            return st;
        if (ne == 0)
            return fail_at(c, ne_off, "tensor '%s': ne[%u] is 0", name, d);
        if (ne > (uint64_t)INT64_MAX)
            return fail_at(c, ne_off, "tensor '%s': ne[%u] %llu too large", name, d,
                           (unsigned long long)ne);
        if (!qp_mul_u64(n_elems, ne, &n_elems) || n_elems > (uint64_t)INT64_MAX)
            return fail_at(c, ne_off, "tensor '%s': element count overflows (ne[%u] %llu)",
                           name, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    uint64_t type_off = c->pos;
    if ((st = rd_u32(c, "type", &t->type)))
        return st;
    const qp_ggml_type_info *ti = qp_ggml_type_get(t->type);
    if (!ti)
        return fail_at(c, type_off, "tensor '%s': unknown ggml type %u", name, t->type);
    int ok = 0;
    uint64_t row = qp_ggml_row_bytes(t->type, (uint64_t)t->ne[0], &ok);
    if (!ok)
        return fail_at(c, dims_off, "tensor '%s': ne[0] %lld is not a multiple of the %s "
                       "block size %u", name, (long long)t->ne[0], ti->name, ti->block_elems);
    uint64_t rows = (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
    if (!qp_mul_u64(row, rows, &t->nbytes))
        return fail_at(c, dims_off, "tensor '%s': byte size overflows", name);
    uint64_t off_at = c->pos;
    if ((st = rd_u64(c, "offset", &t->offset)))
        return st;
    if (t->offset % c->g->alignment != 0)
        return fail_at(c, off_at, "tensor '%s': data offset %llu is not a multiple of the "
                       "alignment %u", name, (unsigned long long)t->offset, c->g->alignment);
    return QP_OK;
}

static qp_status parse_tensor_info(cursor *c, qp_gguf_tensor *t)
{
    char nbuf[160];
    uint64_t at = c->pos;
    qp_status st;
    long long idx = (long long)c->g->n_tensors - 1;
    snprintf(c->where, sizeof c->where, "tensor %lld", idx);
    if ((st = rd_str(c, "name", &t->name)))
        return st;
    if (t->name.len == 0)
        return fail_at(c, at, "tensor %lld: name is empty", idx);
    const char *name = printable(t->name.ptr, t->name.len, nbuf, sizeof nbuf);
    snprintf(c->where, sizeof c->where, "tensor %lld '%s'", idx, name);
    st = parse_tensor_fields(c, t, name);
    c->where[0] = '\0';
    if (st)
        qp_err_set_tensor(c->err, name);
    return st;
}

static qp_status parse_tensor_infos(cursor *c, uint64_t n_tensors)
{
    qp_gguf *g = c->g;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (g->n_tensors == g->cap_tensors) {
            int64_t cap = g->cap_tensors ? g->cap_tensors * 2 : 64;
            qp_gguf_tensor *t = realloc(g->tensors, (size_t)cap * sizeof *t);
            if (!t)
                return nomem(c);
            g->tensors = t;
            uint64_t *o = realloc(g->tensor_info_off, (size_t)cap * sizeof *o);
            if (!o)
                return nomem(c);
            g->tensor_info_off = o;
            g->cap_tensors = cap;
        }
        qp_gguf_tensor *t = &g->tensors[g->n_tensors];
        memset(t, 0, sizeof *t);
        g->tensor_info_off[g->n_tensors] = c->pos;
        g->n_tensors++;
        qp_status st = parse_tensor_info(c, t);
        if (st)
            return st;
    }
    return QP_OK;
}

static int by_offset_r(const void *a, const void *b, void *ctx)
{
    const qp_gguf *g = ctx;
    uint64_t x = g->tensors[*(const int64_t *)a].offset;
    uint64_t y = g->tensors[*(const int64_t *)b].offset;
    return x < y ? -1 : x > y;
}

/* Names unique, data inside the file, no two tensors sharing bytes. */
static qp_status check_tensor_data(cursor *c)
{
    qp_gguf *g = c->g;
    char n1[160], n2[160];
    if (qp_gguf_index_init(&g->tensor_ix, (uint64_t)g->n_tensors, tensor_name, g) != 0)
        return nomem(c);
    for (int64_t i = 0; i < g->n_tensors; i++) {
        qp_gguf_tensor *t = &g->tensors[i];
        const char *name = printable(t->name.ptr, t->name.len, n1, sizeof n1);
        int64_t prev = qp_gguf_index_insert(&g->tensor_ix, i);
        if (prev == -2)
            return nomem(c);
        if (prev >= 0) {
            fail_at(c, g->tensor_info_off[i], "duplicate tensor name '%s' (tensors %lld and %lld)",
                    name, (long long)prev, (long long)i);
            qp_err_set_tensor(c->err, name);
            return QP_ERR_BAD_INPUT;
        }
        uint64_t end, data_size = g->data_off <= g->size ? g->size - g->data_off : 0;
        if (g->data_off > g->size || !qp_add_u64(t->offset, t->nbytes, &end) ||
            end > data_size) {
            fail_at(c, g->tensor_info_off[i], "tensor '%s': data [%llu, +%llu) past end of "
                    "file (data section at %llu, file %llu bytes)", name,
                    (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                    (unsigned long long)g->data_off, (unsigned long long)g->size);
            qp_err_set_tensor(c->err, name);
            return QP_ERR_BAD_INPUT;
        }
        t->data = g->base + g->data_off + t->offset;
    }
    if (g->n_tensors < 2)
        return QP_OK;
    int64_t *order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order)
        return nomem(c);
    for (int64_t i = 0; i < g->n_tensors; i++)
        order[i] = i;
    qsort_r(order, (size_t)g->n_tensors, sizeof *order, by_offset_r, g);
    qp_status st = QP_OK;
    for (int64_t k = 1; k < g->n_tensors && !st; k++) {
        const qp_gguf_tensor *a = &g->tensors[order[k - 1]], *b = &g->tensors[order[k]];
        if (a->offset + a->nbytes > b->offset) {
            st = fail_at(c, g->tensor_info_off[order[k]], "tensors '%s' and '%s' overlap "
                         "(data [%llu, %llu) and [%llu, %llu))",
                         printable(a->name.ptr, a->name.len, n1, sizeof n1),
                         printable(b->name.ptr, b->name.len, n2, sizeof n2),
                         (unsigned long long)a->offset,
                         (unsigned long long)(a->offset + a->nbytes),
                         (unsigned long long)b->offset,
                         (unsigned long long)(b->offset + b->nbytes));
            qp_err_set_tensor(c->err, n2);
        }
    }
    free(order);
    return st;
}

static qp_status parse_image(qp_gguf *g, qp_err *err)
{
    cursor cur = {.g = g, .err = err, .elem = -1}, *c = &cur;
    uint32_t magic;
    uint64_t n_tensors, n_kv, need_kv, need_t;
    qp_status st;

    if (g->size == 0)
        return fail_at(c, 0, "empty file (0 bytes), not a GGUF file");
    if (g->size < 4)
        return fail_at(c, 0, "file too short for the GGUF magic (%llu bytes)",
                       (unsigned long long)g->size);
    magic = qp_gguf_le32(g->base);
    if (magic != GGUF_MAGIC)
        return fail_at(c, 0, "bad magic 0x%08x, not a GGUF file", magic);
    if (g->size < HEADER_BYTES)
        return fail_at(c, 4, "header truncated: %llu bytes, need at least %u",
                       (unsigned long long)g->size, HEADER_BYTES);
    c->pos = 4;
    g->version = qp_gguf_le32(g->base + 4);
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return fail_at(c, 4, "GGUF version 0x%08x: big-endian files are not supported",
                       g->version);
    if (g->version != 2 && g->version != 3)
        return fail_at(c, 4, "unsupported GGUF version %u (want 2 or 3)", g->version);
    c->pos = 8;
    n_tensors = qp_gguf_le64(g->base + 8);
    n_kv = qp_gguf_le64(g->base + 16);
    c->pos = HEADER_BYTES;
    if (!qp_mul_u64(n_kv, MIN_KV_BYTES, &need_kv) || need_kv > remaining(c))
        return fail_at(c, 16, "n_kv %llu cannot fit in the %llu bytes after the header",
                       (unsigned long long)n_kv, (unsigned long long)remaining(c));
    if (!qp_mul_u64(n_tensors, MIN_TENSOR_BYTES, &need_t) || need_t > remaining(c) - need_kv)
        return fail_at(c, 8, "n_tensors %llu cannot fit in the %llu bytes after the header",
                       (unsigned long long)n_tensors, (unsigned long long)remaining(c));
    if ((st = parse_kvs(c, n_kv)) || (st = read_alignment(c)) ||
        (st = parse_tensor_infos(c, n_tensors)))
        return st;
    if (!qp_align_u64(c->pos, g->alignment, &g->data_off))
        return fail_at(c, c->pos, "data section offset overflows");
    return check_tensor_data(c);
}

/* ---------------------------------------------------------------- open/close */

static qp_gguf *new_handle(const char *name)
{
    qp_gguf *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->path = strdup(name ? name : "<memory>");
    if (!g->path) {
        free(g);
        return NULL;
    }
    g->alignment = QP_GGUF_DEFAULT_ALIGNMENT;
    g->crash_handle = -1;
    return g;
}

static qp_status finish_open(qp_gguf *g, qp_gguf **out, qp_err *err)
{
    qp_status st = parse_image(g, err);
    if (st) {
        qp_gguf_close(g);
        return st;
    }
    *out = g;
    return QP_OK;
}

qp_status qp_gguf_open_memory(const void *buf, size_t size, const char *name_for_errors,
                              qp_gguf **out, qp_err *err)
{
    if (!out || (!buf && size))
        return qp_err_set(err, QP_ERR_USAGE, name_for_errors, "qp_gguf_open_memory: bad arguments");
    *out = NULL;
    qp_gguf *g = new_handle(name_for_errors);
    if (!g)
        return qp_err_set(err, QP_ERR_NOMEM, name_for_errors, "out of memory");
    g->base = buf ? buf : (const uint8_t *)"";
    g->size = size;
    return finish_open(g, out, err);
}

qp_status qp_gguf_open(const char *path, qp_gguf **out, qp_err *err)
{
    if (!path || !out)
        return qp_err_set(err, QP_ERR_USAGE, path, "qp_gguf_open: bad arguments");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return qp_err_io(err, path, errno, "cannot open");
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return qp_err_io(err, path, e, "cannot stat");
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return qp_err_io(err, path, EISDIR, "cannot read");
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return qp_err_set(err, QP_ERR_BAD_INPUT, path, "not a regular file");
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return qp_err_set(err, QP_ERR_UNSUPPORTED, path, "file too large to map");
    }
    qp_gguf *g = new_handle(path);
    if (!g) {
        close(fd);
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
    }
    g->size = (uint64_t)sb.st_size;
    g->base = (const uint8_t *)"";
    if (g->size > 0) {
        void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            qp_gguf_close(g);
            return qp_err_io(err, path, e, "cannot mmap");
        }
        g->map = m;
        g->base = m;
        /* A file truncated by someone else while mapped faults with SIGBUS:
         * let the CLI's handler name it. */
        g->crash_handle = qp_crash_map_register(m, (size_t)g->size, path);
    }
    close(fd); /* the mapping keeps the file alive */
    return finish_open(g, out, err);
}

void qp_gguf_close(qp_gguf *g)
{
    if (!g)
        return;
    for (int64_t i = 0; i < g->n_kv; i++)
        free(g->kvs[i].str_offs);
    free(g->kvs);
    free(g->tensors);
    free(g->tensor_info_off);
    qp_gguf_index_free(&g->kv_ix);
    qp_gguf_index_free(&g->tensor_ix);
    qp_crash_map_unregister(g->crash_handle);
    if (g->map)
        munmap(g->map, (size_t)g->size);
    free(g->path);
    free(g);
}
