/* gguf_writer.c - declaring a GGUF file: key/values and tensor infos, and
 * serializing them into the header bytes that begin() writes.
 *
 * Values are serialized when they are set (type + payload, little-endian),
 * so begin() only concatenates; replacing a key swaps its bytes in place,
 * which keeps the key's slot and makes output depend only on the calls. */
#include "format/gguf_writer_impl.h"

#include <stdlib.h>
#include <string.h>

#include "common/qp_checked.h"
#include "common/qp_ggml_types.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the writer copies host arrays as little-endian GGUF payloads"
#endif

/* ---------------------------------------------------------------- bytes */

int qp_gw_buf_reserve(qp_gw_buf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (extra <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void qp_gw_buf_put(qp_gw_buf *b, const void *data, size_t n)
{
    if (n == 0 || qp_gw_buf_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

void qp_gw_buf_u32(qp_gw_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    qp_gw_buf_put(b, x, 4);
}

void qp_gw_buf_u64(qp_gw_buf *b, uint64_t v)
{
    qp_gw_buf_u32(b, (uint32_t)v);
    qp_gw_buf_u32(b, (uint32_t)(v >> 32));
}

void qp_gw_buf_str(qp_gw_buf *b, const char *s, size_t n)
{
    qp_gw_buf_u64(b, n);
    qp_gw_buf_put(b, s, n);
}

/* ---------------------------------------------------------------- lifetime */

static qp_gguf_str wt_name(const void *ctx, int64_t i)
{
    const qp_gguf_writer *w = ctx;
    return (qp_gguf_str){w->tensors[i].name, w->tensors[i].name_len};
}

qp_gguf_writer *qp_gguf_writer_new(const char *final_path)
{
    if (!final_path || !*final_path)
        return NULL;
    qp_gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    size_t n = strlen(final_path);
    w->final_path = strdup(final_path);
    w->tmp_path = malloc(n + 5);
    if (!w->final_path || !w->tmp_path ||
        qp_gguf_index_init(&w->names, 64, wt_name, w) != 0) {
        free(w->final_path);
        free(w->tmp_path);
        free(w);
        return NULL;
    }
    memcpy(w->tmp_path, final_path, n);
    memcpy(w->tmp_path + n, ".tmp", 5);
    w->fd = -1;
    w->crash_handle = -1;
    w->checksums = 1;
    w->alignment = QP_GGUF_DEFAULT_ALIGNMENT;
    pthread_mutex_init(&w->mu, NULL);
    return w;
}

void qp_gguf_writer_free(qp_gguf_writer *w)
{
    if (!w)
        return;
    qp_gguf_writer_abort(w);
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    free(w->kvs);
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        if (w->tensors[i].st)
            XXH3_freeState(w->tensors[i].st);
    }
    free(w->tensors);
    qp_gguf_index_free(&w->names);
    pthread_mutex_destroy(&w->mu);
    free(w->final_path);
    free(w->tmp_path);
    free(w);
}

void qp_gguf_writer_set_checksums(qp_gguf_writer *w, int on)
{
    if (w && w->state == QP_GW_DECLARING)
        w->checksums = on != 0;
}

const char *qp_gguf_writer_temp_path(const qp_gguf_writer *w)
{
    return w ? w->tmp_path : NULL;
}

/* ---------------------------------------------------------------- key/values */

/* Store `val` (type + payload, ownership taken) under `key`. */
static qp_status put_kv(qp_gguf_writer *w, const char *key, qp_gw_buf *val)
{
    if (val->oom) {
        free(val->p);
        return QP_ERR_NOMEM;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].val);
            w->kvs[i].val = val->p;
            w->kvs[i].val_len = val->len;
            return QP_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        qp_gw_kv *k = realloc(w->kvs, cap * sizeof *k);
        if (!k) {
            free(val->p);
            return QP_ERR_NOMEM;
        }
        w->kvs = k;
        w->cap_kv = cap;
    }
    char *kcopy = strdup(key);
    if (!kcopy) {
        free(val->p);
        return QP_ERR_NOMEM;
    }
    w->kvs[w->n_kv++] = (qp_gw_kv){kcopy, val->p, val->len};
    return QP_OK;
}

static qp_status check_key(const qp_gguf_writer *w, const char *key)
{
    if (!w || !key || !*key || w->state != QP_GW_DECLARING ||
        strcmp(key, QP_GGUF_CHECKSUM_KEY) == 0)
        return QP_ERR_USAGE;
    return QP_OK;
}

static qp_status set_scalar(qp_gguf_writer *w, const char *key, qp_gguf_vtype t, uint64_t bits)
{
    qp_status st = check_key(w, key);
    if (st)
        return st;
    qp_gw_buf b = {0};
    qp_gw_buf_u32(&b, t);
    uint32_t n = qp_gguf_vtype_size(t);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t byte = (uint8_t)(bits >> (8 * i));
        qp_gw_buf_put(&b, &byte, 1);
    }
    return put_kv(w, key, &b);
}

qp_status qp_gguf_set_u8(qp_gguf_writer *w, const char *key, uint8_t v)
{
    return set_scalar(w, key, QP_GGUF_U8, v);
}

qp_status qp_gguf_set_i8(qp_gguf_writer *w, const char *key, int8_t v)
{
    return set_scalar(w, key, QP_GGUF_I8, (uint8_t)v);
}

qp_status qp_gguf_set_u16(qp_gguf_writer *w, const char *key, uint16_t v)
{
    return set_scalar(w, key, QP_GGUF_U16, v);
}

qp_status qp_gguf_set_i16(qp_gguf_writer *w, const char *key, int16_t v)
{
    return set_scalar(w, key, QP_GGUF_I16, (uint16_t)v);
}

qp_status qp_gguf_set_u32(qp_gguf_writer *w, const char *key, uint32_t v)
{
    return set_scalar(w, key, QP_GGUF_U32, v);
}

qp_status qp_gguf_set_i32(qp_gguf_writer *w, const char *key, int32_t v)
{
    return set_scalar(w, key, QP_GGUF_I32, (uint32_t)v);
}

qp_status qp_gguf_set_u64(qp_gguf_writer *w, const char *key, uint64_t v)
{
    return set_scalar(w, key, QP_GGUF_U64, v);
}

qp_status qp_gguf_set_i64(qp_gguf_writer *w, const char *key, int64_t v)
{
    return set_scalar(w, key, QP_GGUF_I64, (uint64_t)v);
}

qp_status qp_gguf_set_f32(qp_gguf_writer *w, const char *key, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return set_scalar(w, key, QP_GGUF_F32, bits);
}

qp_status qp_gguf_set_f64(qp_gguf_writer *w, const char *key, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    return set_scalar(w, key, QP_GGUF_F64, bits);
}

qp_status qp_gguf_set_bool(qp_gguf_writer *w, const char *key, int v)
{
    return set_scalar(w, key, QP_GGUF_BOOL, v != 0);
}

qp_status qp_gguf_set_str(qp_gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return QP_ERR_USAGE;
    return qp_gguf_set_strn(w, key, v, strlen(v));
}

qp_status qp_gguf_set_strn(qp_gguf_writer *w, const char *key, const char *v, size_t len)
{
    qp_status st = check_key(w, key);
    if (st)
        return st;
    if (!v && len)
        return QP_ERR_USAGE;
    qp_gw_buf b = {0};
    qp_gw_buf_u32(&b, QP_GGUF_STRING);
    qp_gw_buf_str(&b, v, len);
    return put_kv(w, key, &b);
}

qp_status qp_gguf_set_arr(qp_gguf_writer *w, const char *key, qp_gguf_vtype elem_type,
                          const void *data, uint64_t n)
{
    qp_status st = check_key(w, key);
    if (st)
        return st;
    uint32_t esz = qp_gguf_vtype_size(elem_type);
    uint64_t bytes;
    if (esz == 0 || (!data && n) || !qp_mul_u64(n, esz, &bytes) || bytes > SIZE_MAX - 16)
        return QP_ERR_USAGE;
    qp_gw_buf b = {0};
    if (qp_gw_buf_reserve(&b, 16 + (size_t)bytes) != 0)
        return QP_ERR_NOMEM;
    qp_gw_buf_u32(&b, QP_GGUF_ARRAY);
    qp_gw_buf_u32(&b, elem_type);
    qp_gw_buf_u64(&b, n);
    qp_gw_buf_put(&b, data, (size_t)bytes);
    return put_kv(w, key, &b);
}

qp_status qp_gguf_set_arr_str(qp_gguf_writer *w, const char *key,
                              const char *const *strs, const size_t *lens, uint64_t n)
{
    qp_status st = check_key(w, key);
    if (st)
        return st;
    if (!strs && n)
        return QP_ERR_USAGE;
    uint64_t total = 16;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i] && (!lens || lens[i]))
            return QP_ERR_USAGE;
        uint64_t len = lens ? lens[i] : strlen(strs[i]);
        if (!qp_add_u64(total, 8, &total) || !qp_add_u64(total, len, &total) ||
            total > SIZE_MAX)
            return QP_ERR_NOMEM;
    }
    qp_gw_buf b = {0};
    if (qp_gw_buf_reserve(&b, (size_t)total) != 0)
        return QP_ERR_NOMEM;
    qp_gw_buf_u32(&b, QP_GGUF_ARRAY);
    qp_gw_buf_u32(&b, QP_GGUF_STRING);
    qp_gw_buf_u64(&b, n);
    for (uint64_t i = 0; i < n; i++)
        qp_gw_buf_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]));
    return put_kv(w, key, &b);
}

/* ---------------------------------------------------------------- tensors */

int64_t qp_gguf_add_tensor(qp_gguf_writer *w, const char *name, uint32_t n_dims,
                           const int64_t *ne, uint32_t ggml_type, qp_err *err)
{
    const char *path = w ? w->final_path : NULL;
    if (!w || !name || !ne) {
        qp_err_set(err, QP_ERR_USAGE, path, "qp_gguf_add_tensor: bad arguments");
        return -1;
    }
    if (w->state != QP_GW_DECLARING) {
        qp_err_set(err, QP_ERR_USAGE, path, "tensor '%s' added after the header was written",
                   name);
        qp_err_set_tensor(err, name);
        return -1;
    }
    qp_gw_tensor t = {0};
    const qp_ggml_type_info *ti = qp_ggml_type_get(ggml_type);
    uint64_t n_elems = 1;
    const char *why = NULL;
    if (!*name)
        why = "empty tensor name";
    else if (n_dims == 0 || n_dims > QP_GGUF_MAX_DIMS)
        why = "n_dims out of range 1..4";
    else if (!ti)
        why = "unknown ggml type";
    for (uint32_t d = 0; !why && d < QP_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] < 1)
            why = "dimension < 1";
        else if (!qp_mul_u64(n_elems, (uint64_t)t.ne[d], &n_elems) ||
                 n_elems > (uint64_t)INT64_MAX)
            why = "element count overflows";
    }
    int ok = 0;
    uint64_t row = why ? 0 : qp_ggml_row_bytes(ggml_type, (uint64_t)t.ne[0], &ok);
    if (!why && !ok)
        why = "ne[0] is not a multiple of the type's block size";
    if (!why && !qp_mul_u64(row, (uint64_t)(t.ne[1] * t.ne[2] * t.ne[3]), &t.nbytes))
        why = "byte size overflows";
    if (why) {
        qp_err_set(err, QP_ERR_BAD_INPUT, path, "tensor '%s' (%s): %s", name,
                   qp_ggml_type_name(ggml_type), why);
        qp_err_set_tensor(err, name);
        return -1;
    }
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        qp_gw_tensor *p = realloc(w->tensors, cap * sizeof *p);
        if (!p) {
            qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
            return -1;
        }
        w->tensors = p;
        w->cap_tensors = cap;
    }
    t.name_len = strlen(name);
    t.name = strdup(name);
    if (!t.name) {
        qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        return -1;
    }
    t.n_dims = n_dims;
    t.type = ggml_type;
    t.streaming = 1;
    int64_t idx = (int64_t)w->n_tensors;
    w->tensors[w->n_tensors++] = t;
    int64_t prev = qp_gguf_index_insert(&w->names, idx);
    if (prev != -1) {
        w->n_tensors--;
        free(t.name);
        if (prev == -2) {
            qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        } else {
            qp_err_set(err, QP_ERR_BAD_INPUT, path, "duplicate tensor name '%s'", name);
            qp_err_set_tensor(err, name);
        }
        return -1;
    }
    return idx;
}

uint64_t qp_gguf_writer_tensor_nbytes(const qp_gguf_writer *w, int64_t idx)
{
    if (!w || idx < 0 || (size_t)idx >= w->n_tensors)
        return 0;
    return w->tensors[idx].nbytes;
}

int64_t qp_gguf_writer_tensor_count(const qp_gguf_writer *w)
{
    return w ? (int64_t)w->n_tensors : 0;
}

/* ---------------------------------------------------------------- header */

/* general.alignment, when the caller set it, decides the data layout. */
static qp_status pick_alignment(qp_gguf_writer *w, qp_err *err)
{
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0)
            continue;
        const uint8_t *v = w->kvs[i].val;
        uint32_t a = w->kvs[i].val_len == 8 ? (uint32_t)(v[4] | v[5] << 8 | v[6] << 16 |
                                                         (uint32_t)v[7] << 24) : 0;
        if (w->kvs[i].val_len != 8 || v[0] != QP_GGUF_U32 || a == 0 || (a & (a - 1)) != 0)
            return qp_err_set(err, QP_ERR_USAGE, w->final_path,
                              "general.alignment must be a UINT32 power of two");
        w->alignment = a;
    }
    return QP_OK;
}

qp_status qp_gw_build_header(qp_gguf_writer *w, qp_gw_buf *h, qp_err *err)
{
    qp_status st = pick_alignment(w, err);
    if (st)
        return st;
    /* Tensor data offsets in declaration order, each aligned. */
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        qp_gw_tensor *t = &w->tensors[i];
        if (!qp_align_u64(off, w->alignment, &t->offset) ||
            !qp_add_u64(t->offset, t->nbytes, &off))
            return qp_err_set(err, QP_ERR_USAGE, w->final_path, "data section size overflows");
    }
    uint64_t data_len;
    if (!qp_align_u64(off, w->alignment, &data_len))
        return qp_err_set(err, QP_ERR_USAGE, w->final_path, "data section size overflows");

    qp_gw_buf_put(h, "GGUF", 4);
    qp_gw_buf_u32(h, 3);
    qp_gw_buf_u64(h, w->n_tensors);
    qp_gw_buf_u64(h, w->n_kv + (w->checksums ? 1 : 0));
    for (size_t i = 0; i < w->n_kv; i++) {
        qp_gw_buf_str(h, w->kvs[i].key, strlen(w->kvs[i].key));
        qp_gw_buf_put(h, w->kvs[i].val, w->kvs[i].val_len);
    }
    if (w->checksums) {
        /* Reserved now, filled by finish() with pwrite at ck_off. */
        qp_gw_buf_str(h, QP_GGUF_CHECKSUM_KEY, strlen(QP_GGUF_CHECKSUM_KEY));
        qp_gw_buf_u32(h, QP_GGUF_ARRAY);
        qp_gw_buf_u32(h, QP_GGUF_U64);
        qp_gw_buf_u64(h, w->n_tensors);
        w->ck_off = h->len;
        for (size_t i = 0; i < w->n_tensors; i++)
            qp_gw_buf_u64(h, 0);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const qp_gw_tensor *t = &w->tensors[i];
        qp_gw_buf_str(h, t->name, t->name_len);
        qp_gw_buf_u32(h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            qp_gw_buf_u64(h, (uint64_t)t->ne[d]);
        qp_gw_buf_u32(h, t->type);
        qp_gw_buf_u64(h, t->offset);
    }
    if (h->oom)
        return qp_err_set(err, QP_ERR_NOMEM, w->final_path, "out of memory building header");
    if (!qp_align_u64(h->len, w->alignment, &w->data_off) ||
        !qp_add_u64(w->data_off, data_len, &w->file_size))
        return qp_err_set(err, QP_ERR_USAGE, w->final_path, "file size overflows");
    return QP_OK;
}

qp_status qp_gguf_writer_layout(qp_gguf_writer *w, uint64_t *data_offset, uint64_t *file_size, uint32_t *alignment,
                                qp_err *err)
{
    if (!w || w->state != QP_GW_DECLARING)
        return qp_err_set(err, QP_ERR_USAGE, w ? w->final_path : NULL, "qp_gguf_writer_layout: writer already begun");
    qp_gw_buf h = {0};
    qp_status st = qp_gw_build_header(w, &h, err);
    free(h.p);
    if (st != QP_OK)
        return st;
    *data_offset = w->data_off;
    *file_size = w->file_size;
    *alignment = w->alignment;
    return QP_OK;
}
