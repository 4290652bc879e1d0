/* meta_copy.c - carry a GGUF file's key/values over to a requantized file.
 * Everything is copied except what describes the old encoding: the file
 * type, qpack's checksums, recipe and provenance, and llama.cpp's
 * quantize.* keys; the caller then sets those for the new file. */
#include "convert/meta.h"

#include <stdlib.h>
#include <string.h>

static int skip_key(const char *k)
{
    return strcmp(k, "general.file_type") == 0 || strncmp(k, "qpack.", 6) == 0 || strncmp(k, "quantize.", 9) == 0;
}

static qp_status copy_one(qp_gguf_writer *w, const qp_gguf *g, int64_t i, const char *key, qp_err *err)
{
    qp_gguf_vtype t = qp_gguf_kv_type(g, i);
    uint64_t u = 0;
    int64_t s64 = 0;
    double d = 0;
    switch (t) {
    case QP_GGUF_U8: qp_gguf_kv_as_u64(g, i, &u); return qp_gguf_set_u8(w, key, (uint8_t)u);
    case QP_GGUF_I8: qp_gguf_kv_as_i64(g, i, &s64); return qp_gguf_set_i8(w, key, (int8_t)s64);
    case QP_GGUF_U16: qp_gguf_kv_as_u64(g, i, &u); return qp_gguf_set_u16(w, key, (uint16_t)u);
    case QP_GGUF_I16: qp_gguf_kv_as_i64(g, i, &s64); return qp_gguf_set_i16(w, key, (int16_t)s64);
    case QP_GGUF_U32: qp_gguf_kv_as_u64(g, i, &u); return qp_gguf_set_u32(w, key, (uint32_t)u);
    case QP_GGUF_I32: qp_gguf_kv_as_i64(g, i, &s64); return qp_gguf_set_i32(w, key, (int32_t)s64);
    case QP_GGUF_U64: qp_gguf_kv_as_u64(g, i, &u); return qp_gguf_set_u64(w, key, u);
    case QP_GGUF_I64: qp_gguf_kv_as_i64(g, i, &s64); return qp_gguf_set_i64(w, key, s64);
    case QP_GGUF_F32: qp_gguf_kv_as_f64(g, i, &d); return qp_gguf_set_f32(w, key, (float)d);
    case QP_GGUF_F64: qp_gguf_kv_as_f64(g, i, &d); return qp_gguf_set_f64(w, key, d);
    case QP_GGUF_BOOL: qp_gguf_kv_as_u64(g, i, &u); return qp_gguf_set_bool(w, key, u != 0);
    case QP_GGUF_STRING: {
        qp_gguf_str s = qp_gguf_kv_str(g, i);
        return qp_gguf_set_strn(w, key, s.ptr, (size_t)s.len);
    }
    case QP_GGUF_ARRAY: {
        qp_gguf_vtype et = qp_gguf_arr_type(g, i);
        uint64_t n = qp_gguf_arr_len(g, i);
        if (et == QP_GGUF_STRING) {
            const char **strs = malloc((size_t)(n ? n : 1) * sizeof *strs);
            size_t *lens = malloc((size_t)(n ? n : 1) * sizeof *lens);
            qp_status st = QP_ERR_NOMEM;
            if (strs && lens) {
                for (uint64_t j = 0; j < n; j++) {
                    qp_gguf_str s = qp_gguf_arr_str(g, i, j);
                    strs[j] = s.ptr;
                    lens[j] = (size_t)s.len;
                }
                st = qp_gguf_set_arr_str(w, key, strs, lens, n);
            }
            free(strs);
            free(lens);
            return st;
        }
        if (et == QP_GGUF_ARRAY)
            return qp_err_set(err, QP_ERR_UNSUPPORTED, qp_gguf_path(g), "nested array in key %s", key);
        return qp_gguf_set_arr(w, key, et, qp_gguf_arr_data(g, i), n);
    }
    default:
        return qp_err_set(err, QP_ERR_UNSUPPORTED, qp_gguf_path(g), "key %s has an unknown type", key);
    }
}

qp_status qp_meta_copy_gguf(qp_gguf_writer *w, const qp_gguf *g, const qp_meta_options *opt, qp_err *err)
{
    qp_status s = QP_OK;
    for (int64_t i = 0; i < qp_gguf_kv_count(g) && s == QP_OK; i++) {
        qp_gguf_str k = qp_gguf_kv_key(g, i);
        char key[512];
        if (k.len >= sizeof key)
            return qp_err_set(err, QP_ERR_UNSUPPORTED, qp_gguf_path(g), "key of %llu bytes is too long",
                              (unsigned long long)k.len);
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        if (skip_key(key))
            continue;
        s = copy_one(w, g, i, key, err);
        if (s != QP_OK && err && err->status == QP_OK)
            qp_err_set(err, s, qp_gguf_path(g), "could not copy key %s", key);
        /* general.file_type comes right after the keys it followed. */
    }
    if (s == QP_OK)
        s = qp_gguf_set_u32(w, "general.file_type", opt->file_type);
    if (s == QP_OK)
        s = qp_gguf_set_str(w, "qpack.version", QP_VERSION);
    if (s == QP_OK)
        s = qp_gguf_set_str(w, "qpack.recipe", opt->recipe ? opt->recipe : "");
    if (s != QP_OK && err && err->status == QP_OK)
        qp_err_set(err, s, qp_gguf_path(g), "could not write metadata");
    return s;
}
