/* q5_0.c - Q5_0: 32 elements, f16 d, y = d * (q - 16), q in 0..31 (layout
 * in quant/qblocks.h); vec_dot against Q8_0.
 *
 * Without importance the quantizer is ggml's (largest magnitude maps to
 * -16, codes truncated from x/d + 16.5): bytes match llama.cpp. With
 * importance: the exact weighted best scale, or ggml's block if better. */
#include "quant/qtype_internal.h"

#include <math.h>

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

static int trunc_q(float v, int qmax)
{
    if (!(v > 0.0f))
        return 0;
    return v >= (float)qmax ? qmax : (int)v;
}

static void q5_0_pack(const uint8_t *L, qp_block_q5_0 *b)
{
    uint32_t qh = 0;
    for (int j = 0; j < QP_QK / 2; j++) {
        b->qs[j] = (uint8_t)((L[j] & 0xF) | ((L[j + QP_QK / 2] & 0xF) << 4));
        qh |= (uint32_t)(L[j] >> 4) << j;
        qh |= (uint32_t)(L[j + QP_QK / 2] >> 4) << (j + QP_QK / 2);
    }
    memcpy(b->qh, &qh, 4);
}

static void q5_0_unpack(const qp_block_q5_0 *b, uint8_t *L)
{
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < QP_QK / 2; j++) {
        L[j] = (uint8_t)((b->qs[j] & 0xF) | (((qh >> j) & 1) << 4));
        L[j + QP_QK / 2] = (uint8_t)((b->qs[j] >> 4) | (((qh >> (j + QP_QK / 2)) & 1) << 4));
    }
}

static void q5_0_block_plain(const float *x, qp_block_q5_0 *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QP_QK; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = qp_ks_f16_bits(d);
    uint8_t L[QP_QK];
    for (int j = 0; j < QP_QK; j++)
        L[j] = (uint8_t)trunc_q(x[j] * id + 16.5f, 31);
    q5_0_pack(L, b);
}

static void q5_0_block_weighted(const float *x, const float *w, const qp_ks_grid *g, qp_kf_sym_f16_fn search,
                                qp_block_q5_0 *b)
{
    uint8_t L[QP_QK];
    qp_block_q5_0 plain;
    q5_0_block_plain(x, &plain);
    q5_0_unpack(&plain, L);
    const float dp = qp_f16_to_f32(plain.d);
    double e_plain = 0.0;
    for (int j = 0; j < QP_QK; j++) {
        double diff = (double)((float)(L[j] - 16) * dp) - x[j];
        e_plain += (double)w[j] * diff * diff;
    }
    uint16_t d_bits;
    double e = search(QP_QK, x, w, g, &d_bits, L);
    if (!(e < e_plain)) {
        *b = plain;
        return;
    }
    b->d = d_bits;
    q5_0_pack(L, b); /* level k is q = k */
}

void qp_q5_0_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_f16_fn search)
{
    qp_block_q5_0 *b = dst;
    qp_ks_grid g;
    qp_ks_grid_uniform(&g, -16, 15);
    float w[QP_QK];
    float xbuf[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK, QP_QK, xbuf);
        if (!imp) {
            q5_0_block_plain(x, &b[i]);
        } else {
            qp_ks_block_weights(imp + i * QP_QK, QP_QK, w);
            q5_0_block_weighted(x, w, &g, search, &b[i]);
        }
    }
}

static void quantize_row_q5_0(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q5_0_quantize_rows(src, dst, n, imp, qp_kf_sym_block_f16);
}

static void dequantize_row_q5_0(const void *src, float *dst, int64_t n)
{
    const qp_block_q5_0 *b = src;
    uint8_t L[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float d = qp_f16_to_f32(b[i].d);
        q5_0_unpack(&b[i], L);
        for (int j = 0; j < QP_QK; j++)
            dst[i * QP_QK + j] = (float)(L[j] - 16) * d;
    }
}

static float vec_dot_q5_0(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q5_0 *x = w_row;
    const qp_block_q8_0 *y = act_row;
    float sum = 0.0f;
    uint8_t L[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        q5_0_unpack(&x[i], L);
        int32_t isum = 0;
        for (int j = 0; j < QP_QK; j++)
            isum += (L[j] - 16) * y[i].qs[j];
        sum += (float)isum * (qp_f16_to_f32(x[i].d) * qp_f16_to_f32(y[i].d));
    }
    return sum;
}

const qp_qtype qp_qtype_q5_0 = {
    .type = QP_GGML_Q5_0,
    .block_elems = QP_QK,
    .block_bytes = sizeof(qp_block_q5_0),
    .quantize_row = quantize_row_q5_0,
    .dequantize_row = dequantize_row_q5_0,
    .vec_dot_type = QP_GGML_Q8_0,
    .vec_dot = vec_dot_q5_0,
};
