/* ggml_vectors_common.h - shared by test_ggml_vectors.c (whole tensors,
 * slow) and test_ggml_vectors_fast.c (a row subset): loading the
 * tests/fixtures/ggml-vectors oracle (vectors.json, the source tensors,
 * ggml's quantized bytes and dequantized rows, and the per-column
 * importance from imatrix-calib.gguf), and the error measures of
 * vectors.json. Static functions only: each test includes it once. */
#ifndef GGML_VECTORS_COMMON_H
#define GGML_VECTORS_COMMON_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "quant/qtype.h"
#include "support/qp_test.h"

#define GV_DIR "ggml-vectors/"
#define GV_DEQ_ROWS 64 /* rows of ggml output stored per tag */

static const char *const GV_TENSORS[2] = {"blk.0.ffn_down.weight", "blk.1.attn_q.weight"};

typedef struct {
    const char *name;
    int rows, cols;
    float *src; /* rows * cols */
    float *imp; /* cols: in_sum2 / counts */
} gv_tensor;

typedef struct {
    char tag[32];
    uint32_t type;
    int imat; /* imat-* tag: quantized with importance */
    double rel_rmse[2], wrel_rmse[2]; /* ggml's figures per GV_TENSORS[] */
} gv_tag;

typedef struct {
    gv_tensor t[2];
    gv_tag tags[32];
    int ntags;
} gv_oracle;

static void *gv_read(const char *rel, size_t *size)
{
    char path[512];
    snprintf(path, sizeof path, GV_DIR "%s", rel);
    void *p = qp_test_read_file(qp_fixture(path), size);
    if (!p)
        fail_msg("cannot read fixture %s", path);
    return p;
}

/* ---- a minimal, bounds-checked GGUF walk: just enough to find the f32
 * tensors "<name>.in_sum2" and "<name>.counts" of an imatrix file. */

typedef struct {
    const uint8_t *p;
    size_t n, off;
    int bad;
} gv_cur;

static uint64_t gv_u(gv_cur *c, int bytes)
{
    uint64_t v = 0;
    if (c->bad || c->n - c->off < (size_t)bytes) {
        c->bad = 1;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)c->p[c->off + i] << (8 * i);
    c->off += (size_t)bytes;
    return v;
}

static void gv_skip(gv_cur *c, uint64_t bytes)
{
    if (c->bad || c->n - c->off < bytes)
        c->bad = 1;
    else
        c->off += (size_t)bytes;
}

static void gv_skip_value(gv_cur *c, uint32_t type, int depth)
{
    static const int size[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
        gv_skip(c, gv_u(c, 8));
    } else if (type == 9 && depth == 0) {
        uint32_t et = (uint32_t)gv_u(c, 4);
        uint64_t len = gv_u(c, 8);
        for (uint64_t i = 0; i < len && !c->bad; i++)
            gv_skip_value(c, et, 1);
    } else if (type < 13 && size[type] > 0) {
        gv_skip(c, (uint64_t)size[type]);
    } else {
        c->bad = 1;
    }
}

/* Per-column importance in_sum2[j] / counts of `tensor` (cols values). */
static float *gv_load_imatrix(const char *tensor, int cols)
{
    size_t size;
    uint8_t *file = gv_read("imatrix-calib.gguf", &size);
    gv_cur c = {file, size, 0, 0};
    assert_int_equal(gv_u(&c, 4), 0x46554747u); /* "GGUF" */
    gv_u(&c, 4);
    uint64_t nt = gv_u(&c, 8), nkv = gv_u(&c, 8);
    uint64_t align = 32;
    for (uint64_t i = 0; i < nkv && !c.bad; i++) {
        uint64_t klen = gv_u(&c, 8);
        const char *key = (const char *)file + c.off;
        gv_skip(&c, klen);
        uint32_t type = (uint32_t)gv_u(&c, 4);
        if (!c.bad && klen == 17 && memcmp(key, "general.alignment", 17) == 0 && type == 4)
            align = gv_u(&c, 4);
        else
            gv_skip_value(&c, type, 0);
    }
    char want_s[128], want_c[128];
    snprintf(want_s, sizeof want_s, "%s.in_sum2", tensor);
    snprintf(want_c, sizeof want_c, "%s.counts", tensor);
    uint64_t off_s = UINT64_MAX, off_c = UINT64_MAX, ne_s = 0;
    for (uint64_t i = 0; i < nt && !c.bad; i++) {
        uint64_t nlen = gv_u(&c, 8);
        const char *name = (const char *)file + c.off;
        gv_skip(&c, nlen);
        uint32_t nd = (uint32_t)gv_u(&c, 4);
        uint64_t ne = 1;
        for (uint32_t d = 0; d < nd && d < 8; d++)
            ne *= gv_u(&c, 8);
        uint32_t type = (uint32_t)gv_u(&c, 4);
        uint64_t off = gv_u(&c, 8);
        if (c.bad || type != 0)
            continue;
        if (nlen == strlen(want_s) && memcmp(name, want_s, nlen) == 0) {
            off_s = off;
            ne_s = ne;
        } else if (nlen == strlen(want_c) && memcmp(name, want_c, nlen) == 0) {
            off_c = off;
        }
    }
    assert_false(c.bad);
    assert_true(off_s != UINT64_MAX && off_c != UINT64_MAX);
    assert_int_equal(ne_s, (uint64_t)cols);
    uint64_t data = (c.off + align - 1) / align * align;
    assert_true(data + off_s + 4ull * (uint64_t)cols <= size && data + off_c + 4 <= size);
    float counts;
    memcpy(&counts, file + data + off_c, 4);
    assert_true(counts > 0.0f);
    float *imp = malloc(sizeof(float) * (size_t)cols);
    memcpy(imp, file + data + off_s, sizeof(float) * (size_t)cols);
    for (int j = 0; j < cols; j++)
        imp[j] /= counts;
    free(file);
    return imp;
}

static void gv_load(gv_oracle *o)
{
    memset(o, 0, sizeof *o);
    size_t size;
    char *json = gv_read("vectors.json", &size);
    cJSON *root = cJSON_Parse(json);
    free(json);
    assert_non_null(root);
    cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    for (int k = 0; k < 2; k++) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(tensors, GV_TENSORS[k]);
        assert_non_null(t);
        o->t[k].name = GV_TENSORS[k];
        o->t[k].rows = cJSON_GetObjectItemCaseSensitive(t, "rows")->valueint;
        o->t[k].cols = cJSON_GetObjectItemCaseSensitive(t, "row_len")->valueint;
        char rel[256];
        snprintf(rel, sizeof rel, "%s.src.f32", GV_TENSORS[k]);
        o->t[k].src = gv_read(rel, &size);
        assert_int_equal(size, (size_t)o->t[k].rows * (size_t)o->t[k].cols * 4);
        o->t[k].imp = gv_load_imatrix(GV_TENSORS[k], o->t[k].cols);
    }
    cJSON *types = cJSON_GetObjectItemCaseSensitive(root, "types");
    cJSON *it;
    cJSON_ArrayForEach(it, types)
    {
        assert_true(o->ntags < 32);
        gv_tag *g = &o->tags[o->ntags++];
        snprintf(g->tag, sizeof g->tag, "%s", it->string);
        g->imat = strncmp(it->string, "imat-", 5) == 0;
        int type = qp_ggml_type_from_name(cJSON_GetObjectItemCaseSensitive(it, "ggml_type")->valuestring);
        assert_true(type >= 0);
        g->type = (uint32_t)type;
        cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "tensors");
        for (int k = 0; k < 2; k++) {
            cJSON *t = cJSON_GetObjectItemCaseSensitive(ts, GV_TENSORS[k]);
            assert_non_null(t);
            g->rel_rmse[k] = cJSON_GetObjectItemCaseSensitive(t, "rel_rmse")->valuedouble;
            g->wrel_rmse[k] = cJSON_GetObjectItemCaseSensitive(t, "imatrix_weighted_rel_rmse")->valuedouble;
        }
    }
    cJSON_Delete(root);
    assert_true(o->ntags >= 19);
}

static void gv_free(gv_oracle *o)
{
    for (int k = 0; k < 2; k++) {
        free(o->t[k].src);
        free(o->t[k].imp);
    }
}

/* sqrt(sum w_j (deq - src)^2 / sum w_j src^2); w NULL = all 1. */
static double gv_rel_rmse(const float *src, const float *deq, int rows, int cols, const float *w)
{
    double num = 0.0, den = 0.0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double wj = w ? w[j] : 1.0;
            double s = src[(size_t)i * cols + j], d = deq[(size_t)i * cols + j] - s;
            num += wj * d * d;
            den += wj * s * s;
        }
    return sqrt(num / den);
}

/* Quantize rows [0, rows) of t with our scalar kernels (importance when
 * imat), dequantize into deq; returns the quantized bytes (malloc'ed). */
static uint8_t *gv_quantize(const gv_tensor *t, uint32_t type, int imat, int rows, float *deq)
{
    const qp_qtype *q = qp_qtype_get_scalar(type);
    assert_non_null(q);
    assert_non_null(q->quantize_row);
    uint64_t rb = qp_qtype_row_bytes(type, t->cols);
    assert_true(rb > 0);
    uint8_t *buf = malloc(rb * (uint64_t)rows);
    for (int i = 0; i < rows; i++) {
        q->quantize_row(t->src + (size_t)i * t->cols, buf + rb * (uint64_t)i, t->cols,
                        imat ? t->imp : NULL);
        q->dequantize_row(buf + rb * (uint64_t)i, deq + (size_t)i * t->cols, t->cols);
    }
    return buf;
}

/* ggml's dequantized first rows of `tag` for tensor k (GV_DEQ_ROWS rows). */
static float *gv_ggml_deq(const gv_tag *g, const gv_tensor *t)
{
    char rel[256];
    size_t size;
    snprintf(rel, sizeof rel, "%s/%s.deq.f32", g->tag, t->name);
    float *deq = gv_read(rel, &size);
    assert_int_equal(size, (size_t)GV_DEQ_ROWS * (size_t)t->cols * 4);
    return deq;
}

/* ggml's quantized bytes of the first GV_DEQ_ROWS rows. */
static uint8_t *gv_ggml_q(const gv_tag *g, const gv_tensor *t)
{
    char rel[256];
    size_t size;
    snprintf(rel, sizeof rel, "%s/%s.q", g->tag, t->name);
    uint8_t *q = gv_read(rel, &size);
    assert_int_equal(size, (size_t)GV_DEQ_ROWS * qp_qtype_row_bytes(g->type, t->cols));
    return q;
}

/* Every stored row of ggml's bytes dequantizes to ggml's floats bit for bit. */
static void gv_check_dequant(const gv_oracle *o)
{
    for (int ti = 0; ti < o->ntags; ti++) {
        const gv_tag *g = &o->tags[ti];
        const qp_qtype *q = qp_qtype_get_scalar(g->type);
        assert_non_null(q);
        for (int k = 0; k < 2; k++) {
            const gv_tensor *t = &o->t[k];
            uint8_t *qb = gv_ggml_q(g, t);
            float *ref = gv_ggml_deq(g, t);
            float *mine = malloc(sizeof(float) * (size_t)GV_DEQ_ROWS * t->cols);
            uint64_t rb = qp_qtype_row_bytes(g->type, t->cols);
            for (int i = 0; i < GV_DEQ_ROWS; i++)
                q->dequantize_row(qb + rb * (uint64_t)i, mine + (size_t)i * t->cols, t->cols);
            size_t n = (size_t)GV_DEQ_ROWS * t->cols;
            if (memcmp(mine, ref, n * 4) != 0) {
                for (size_t e = 0; e < n; e++)
                    if (memcmp(&mine[e], &ref[e], 4) != 0) {
                        fail_msg("%s %s: element %zu dequantizes to %.9g, ggml %.9g", g->tag,
                                 t->name, e, mine[e], ref[e]);
                    }
            }
            free(mine);
            free(ref);
            free(qb);
        }
    }
}

#endif
