/* gguf_access.c - lookups on an opened GGUF: key/values by index or name,
 * typed conversions, arrays, tensors. Everything was validated at open, so
 * these only bounds-check their arguments. */
#include <string.h>

#include "format/gguf_reader_impl.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qp_gguf_arr_data hands out raw little-endian element arrays"
#endif

const char *qp_gguf_path(const qp_gguf *g) { return g ? g->path : NULL; }
uint32_t qp_gguf_version(const qp_gguf *g) { return g ? g->version : 0; }
uint32_t qp_gguf_alignment(const qp_gguf *g) { return g ? g->alignment : 0; }
uint64_t qp_gguf_data_offset(const qp_gguf *g) { return g ? g->data_off : 0; }
uint64_t qp_gguf_file_size(const qp_gguf *g) { return g ? g->size : 0; }
int64_t qp_gguf_kv_count(const qp_gguf *g) { return g ? g->n_kv : 0; }
int64_t qp_gguf_tensor_count(const qp_gguf *g) { return g ? g->n_tensors : 0; }

static const gguf_kv *kv_at(const qp_gguf *g, int64_t i)
{
    return (g && i >= 0 && i < g->n_kv) ? &g->kvs[i] : NULL;
}

int64_t qp_gguf_find_key(const qp_gguf *g, const char *key)
{
    if (!g || !key)
        return -1;
    return qp_gguf_index_find(&g->kv_ix, key, strlen(key));
}

qp_gguf_str qp_gguf_kv_key(const qp_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->key : (qp_gguf_str){NULL, 0};
}

qp_gguf_vtype qp_gguf_kv_type(const qp_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return kv ? kv->type : QP_GGUF_VTYPE_COUNT;
}

/* The scalar as one of three wide kinds; 0 if not a numeric/bool scalar. */
typedef struct {
    int kind; /* 1 unsigned, 2 signed, 3 float */
    uint64_t u;
    int64_t i;
    double f;
} wide;

static int scalar(const qp_gguf *g, int64_t idx, wide *w)
{
    const gguf_kv *kv = kv_at(g, idx);
    if (!kv)
        return 0;
    const uint8_t *p = kv->val;
    memset(w, 0, sizeof *w);
    switch (kv->type) {
    case QP_GGUF_U8: w->kind = 1; w->u = p[0]; return 1;
    case QP_GGUF_BOOL: w->kind = 1; w->u = p[0] != 0; return 1;
    case QP_GGUF_U16: w->kind = 1; w->u = (uint64_t)p[0] | (uint64_t)p[1] << 8; return 1;
    case QP_GGUF_U32: w->kind = 1; w->u = qp_gguf_le32(p); return 1;
    case QP_GGUF_U64: w->kind = 1; w->u = qp_gguf_le64(p); return 1;
    case QP_GGUF_I8: w->kind = 2; w->i = (int8_t)p[0]; return 1;
    case QP_GGUF_I16: w->kind = 2; w->i = (int16_t)(uint16_t)(p[0] | p[1] << 8); return 1;
    case QP_GGUF_I32: w->kind = 2; w->i = (int32_t)qp_gguf_le32(p); return 1;
    case QP_GGUF_I64: w->kind = 2; w->i = (int64_t)qp_gguf_le64(p); return 1;
    case QP_GGUF_F32: {
        uint32_t b = qp_gguf_le32(p);
        float f;
        memcpy(&f, &b, 4);
        w->kind = 3;
        w->f = f;
        return 1;
    }
    case QP_GGUF_F64: {
        uint64_t b = qp_gguf_le64(p);
        memcpy(&w->f, &b, 8);
        w->kind = 3;
        return 1;
    }
    default: return 0;
    }
}

/* Conversions succeed only when the value is representable exactly:
 * no negative numbers as u64, no fractions or NaN as integers. */
int qp_gguf_kv_as_u64(const qp_gguf *g, int64_t i, uint64_t *out)
{
    wide w;
    if (!scalar(g, i, &w))
        return 0;
    if (w.kind == 1) {
        *out = w.u;
    } else if (w.kind == 2) {
        if (w.i < 0)
            return 0;
        *out = (uint64_t)w.i;
    } else {
        if (!(w.f >= 0 && w.f < 18446744073709551616.0) || w.f != (double)(uint64_t)w.f)
            return 0;
        *out = (uint64_t)w.f;
    }
    return 1;
}

int qp_gguf_kv_as_i64(const qp_gguf *g, int64_t i, int64_t *out)
{
    wide w;
    if (!scalar(g, i, &w))
        return 0;
    if (w.kind == 1) {
        if (w.u > (uint64_t)INT64_MAX)
            return 0;
        *out = (int64_t)w.u;
    } else if (w.kind == 2) {
        *out = w.i;
    } else {
        if (!(w.f >= -9223372036854775808.0 && w.f < 9223372036854775808.0) ||
            w.f != (double)(int64_t)w.f)
            return 0;
        *out = (int64_t)w.f;
    }
    return 1;
}

int qp_gguf_kv_as_f64(const qp_gguf *g, int64_t i, double *out)
{
    wide w;
    if (!scalar(g, i, &w))
        return 0;
    *out = w.kind == 1 ? (double)w.u : w.kind == 2 ? (double)w.i : w.f;
    return 1;
}

qp_gguf_str qp_gguf_kv_str(const qp_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return (kv && kv->type == QP_GGUF_STRING) ? kv->str : (qp_gguf_str){NULL, 0};
}

qp_gguf_vtype qp_gguf_arr_type(const qp_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return (kv && kv->type == QP_GGUF_ARRAY) ? kv->arr_type : QP_GGUF_VTYPE_COUNT;
}

uint64_t qp_gguf_arr_len(const qp_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    return (kv && kv->type == QP_GGUF_ARRAY) ? kv->arr_len : 0;
}

const void *qp_gguf_arr_data(const qp_gguf *g, int64_t i)
{
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != QP_GGUF_ARRAY || qp_gguf_vtype_size(kv->arr_type) == 0)
        return NULL;
    return kv->val;
}

qp_gguf_str qp_gguf_arr_str(const qp_gguf *g, int64_t i, uint64_t j)
{
    const gguf_kv *kv = kv_at(g, i);
    if (!kv || kv->type != QP_GGUF_ARRAY || kv->arr_type != QP_GGUF_STRING || j >= kv->arr_len)
        return (qp_gguf_str){NULL, 0};
    uint64_t off = kv->str_offs[j];
    return (qp_gguf_str){(const char *)g->base + off + 8, qp_gguf_le64(g->base + off)};
}

int qp_gguf_get_u64(const qp_gguf *g, const char *key, uint64_t *out)
{
    return qp_gguf_kv_as_u64(g, qp_gguf_find_key(g, key), out);
}

int qp_gguf_get_f64(const qp_gguf *g, const char *key, double *out)
{
    return qp_gguf_kv_as_f64(g, qp_gguf_find_key(g, key), out);
}

int qp_gguf_get_str(const qp_gguf *g, const char *key, qp_gguf_str *out)
{
    int64_t i = qp_gguf_find_key(g, key);
    if (!kv_at(g, i) || g->kvs[i].type != QP_GGUF_STRING)
        return 0;
    *out = g->kvs[i].str;
    return 1;
}

const qp_gguf_tensor *qp_gguf_tensor_at(const qp_gguf *g, int64_t i)
{
    return (g && i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const qp_gguf_tensor *qp_gguf_find_tensor(const qp_gguf *g, const char *name)
{
    if (!g || !name)
        return NULL;
    return qp_gguf_tensor_at(g, qp_gguf_index_find(&g->tensor_ix, name, strlen(name)));
}
