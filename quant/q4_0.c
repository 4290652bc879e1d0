/* q4_0.c - Q4_0: 32 elements, f16 d, y = d * (q - 8) (layout in
 * quant/qblocks.h); vec_dot against Q8_0.
 *
 * Without importance the quantizer is ggml's (the largest magnitude maps to
 * -8, codes truncated from x/d + 8.5), so the bytes match llama.cpp. With
 * importance: the exact weighted best scale (kquant_search), keeping
 * ggml's block instead if it happens to be better. */
#include "quant/qtype_internal.h"

#include <math.h>

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

/* (int)(v) for the ggml rounding idiom, saturated to 0..15; NaN -> 0. */
static int trunc_q(float v, int qmax)
{
    if (!(v > 0.0f))
        return 0;
    return v >= (float)qmax ? qmax : (int)v;
}

static void q4_0_block_plain(const float *x, qp_block_q4_0 *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QP_QK; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = qp_ks_f16_bits(d);
    for (int j = 0; j < QP_QK / 2; j++) {
        int q0 = trunc_q(x[j] * id + 8.5f, 15);
        int q1 = trunc_q(x[j + QP_QK / 2] * id + 8.5f, 15);
        b->qs[j] = (uint8_t)(q0 | (q1 << 4));
    }
}

static void q4_0_unpack(const qp_block_q4_0 *b, uint8_t *L)
{
    for (int j = 0; j < QP_QK / 2; j++) {
        L[j] = b->qs[j] & 0xF;
        L[j + QP_QK / 2] = b->qs[j] >> 4;
    }
}

static void q4_0_block_weighted(const float *x, const float *w, const qp_ks_grid *g, qp_kf_sym_f16_fn search,
                                qp_block_q4_0 *b)
{
    uint8_t L[QP_QK];
    qp_block_q4_0 plain;
    q4_0_block_plain(x, &plain);
    q4_0_unpack(&plain, L);
    const float dp = qp_f16_to_f32(plain.d);
    double e_plain = 0.0;
    for (int j = 0; j < QP_QK; j++) {
        double diff = (double)((float)(L[j] - 8) * dp) - x[j];
        e_plain += (double)w[j] * diff * diff;
    }
    uint16_t d_bits;
    double e = search(QP_QK, x, w, g, &d_bits, L);
    if (!(e < e_plain)) {
        *b = plain;
        return;
    }
    b->d = d_bits;
    for (int j = 0; j < QP_QK / 2; j++)
        b->qs[j] = (uint8_t)(L[j] | (L[j + QP_QK / 2] << 4)); /* level k is q = k */
}

void qp_q4_0_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_f16_fn search)
{
    qp_block_q4_0 *b = dst;
    qp_ks_grid g;
    qp_ks_grid_uniform(&g, -8, 7);
    float w[QP_QK];
    float xbuf[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK, QP_QK, xbuf);
        if (!imp) {
            q4_0_block_plain(x, &b[i]);
        } else {
            qp_ks_block_weights(imp + i * QP_QK, QP_QK, w);
            q4_0_block_weighted(x, w, &g, search, &b[i]);
        }
    }
}

static void quantize_row_q4_0(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q4_0_quantize_rows(src, dst, n, imp, qp_kf_sym_block_f16);
}

static void dequantize_row_q4_0(const void *src, float *dst, int64_t n)
{
    const qp_block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float d = qp_f16_to_f32(b[i].d);
        float *y = dst + i * QP_QK;
        for (int j = 0; j < QP_QK / 2; j++) {
            y[j] = (float)((b[i].qs[j] & 0xF) - 8) * d;
            y[j + QP_QK / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static float vec_dot_q4_0(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q4_0 *x = w_row;
    const qp_block_q8_0 *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < QP_QK / 2; j++) {
            isum += ((x[i].qs[j] & 0xF) - 8) * y[i].qs[j];
            isum += ((x[i].qs[j] >> 4) - 8) * y[i].qs[j + QP_QK / 2];
        }
        sum += (float)isum * (qp_f16_to_f32(x[i].d) * qp_f16_to_f32(y[i].d));
    }
    return sum;
}

const qp_qtype qp_qtype_q4_0 = {
    .type = QP_GGML_Q4_0,
    .block_elems = QP_QK,
    .block_bytes = sizeof(qp_block_q4_0),
    .quantize_row = quantize_row_q4_0,
    .dequantize_row = dequantize_row_q4_0,
    .vec_dot_type = QP_GGML_Q8_0,
    .vec_dot = vec_dot_q4_0,
};
