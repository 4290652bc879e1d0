/* prepack.c - qp_rt_model_prepack: float weights widened once into the
 * matmul's panel layout (see model.h). */
#include "runtime-lite/model_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/qp_cpu.h"
#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "runtime-lite/matmul.h"

static int packable(const qp_rt_tensor *t)
{
    return t->data && !t->packed &&
           (t->type == QP_GGML_F32 || t->type == QP_GGML_F16 || t->type == QP_GGML_BF16);
}

static uint64_t packed_floats(const qp_rt_tensor *t)
{
    const uint64_t panels = ((uint64_t)t->n_rows + QP_RT_TILE_N - 1) / QP_RT_TILE_N;
    return panels * QP_RT_TILE_N * (uint64_t)t->row_len;
}

typedef struct {
    const qp_rt_tensor *t;
    float *dst;
    qp_rt_pack_fn pack;
} pack_ctx;

static void pack_worker(void *vctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const pack_ctx *c = vctx;
    const qp_rt_tensor *t = c->t;
    for (int64_t p = begin; p < end; p++) {
        const int64_t r0 = p * QP_RT_TILE_N;
        const int nr = (int)(t->n_rows - r0 < QP_RT_TILE_N ? t->n_rows - r0 : QP_RT_TILE_N);
        c->pack(t->type, (const uint8_t *)t->data + (uint64_t)r0 * t->row_bytes, t->row_bytes, nr, t->row_len,
                c->dst + (size_t)p * QP_RT_TILE_N * (size_t)t->row_len);
    }
}

/* Every matrix of the model, each listed once (a tied output is the
 * embedding itself and gets its panels afterwards). */
static int list_matrices(qp_rt_model *m, qp_rt_tensor **out)
{
    int n = 0;
    out[n++] = &m->w.token_embd;
    if (!m->w.tied)
        out[n++] = &m->w.output;
    for (int64_t l = 0; l < m->cfg.n_layer; l++) {
        qp_rt_layer *L = &m->w.layers[l];
        qp_rt_tensor *ts[] = {&L->attn_q, &L->attn_k, &L->attn_v, &L->attn_output, &L->ffn_gate, &L->ffn_up,
                              &L->ffn_down, &L->ffn_gate_inp, &L->ffn_gate_exps, &L->ffn_up_exps,
                              &L->ffn_down_exps};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
            out[n++] = ts[i];
    }
    return n;
}

qp_status qp_rt_model_prepack(qp_rt_model *m, uint64_t max_bytes, int n_threads, uint64_t *bytes_out,
                              qp_err *err)
{
    if (bytes_out)
        *bytes_out = 0;
    qp_rt_tensor **ts = malloc((size_t)(2 + 11 * m->cfg.n_layer) * sizeof *ts);
    if (!ts)
        return qp_err_set(err, QP_ERR_NOMEM, m->path, "out of memory");
    const int n = list_matrices(m, ts);
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        if (packable(ts[i]))
            total += packed_floats(ts[i]) * sizeof(float);
    qp_status st = QP_OK;
    if (total == 0 || total > max_bytes)
        goto done;
    const qp_rt_pack_fn pack = qp_cpu_get().avx2 ? qp_rt_pack_avx2 : qp_rt_pack_scalar;
    for (int i = 0; i < n && st == QP_OK; i++) {
        qp_rt_tensor *t = ts[i];
        if (!packable(t))
            continue;
        float *dst = aligned_alloc(64, (size_t)((packed_floats(t) * sizeof(float) + 63) & ~(uint64_t)63));
        if (!dst) {
            st = qp_err_set(err, QP_ERR_NOMEM, m->path, "out of memory packing %s", t->name);
            break;
        }
        if ((st = qp_rt_model_own(m, dst, err)) != QP_OK)
            break;
        pack_ctx c = {t, dst, pack};
        qp_parallel_for(n_threads, (t->n_rows + QP_RT_TILE_N - 1) / QP_RT_TILE_N, pack_worker, &c);
        t->packed = dst;
    }
    if (st == QP_OK) {
        if (m->w.tied)
            m->w.output.packed = m->w.token_embd.packed;
        if (bytes_out)
            *bytes_out = total;
    }
done:
    free(ts);
    return st;
}
