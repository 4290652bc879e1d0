/* q5_1.c - Q5_1: 32 elements, f16 d and m, y = d * q + m, q in 0..31
 * (layout in quant/qblocks.h).
 *
 * vec_dot takes Q8_0 activations (ggml uses Q8_1, whose stored block sum
 * only saves the 32 adds that give sum(a) here): per block
 *     d*da*sum(q*a) + m*da*sum(a).
 *
 * Without importance the quantizer is ggml's (min/max range, codes
 * truncated from (x-min)/d + 0.5): bytes match llama.cpp. With importance:
 * the weighted (scale, offset) search, or ggml's block if better. */
#include "quant/qtype_internal.h"

#include <float.h>
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

static void q5_1_pack(const uint8_t *L, qp_block_q5_1 *b)
{
    uint32_t qh = 0;
    for (int j = 0; j < QP_QK / 2; j++) {
        b->qs[j] = (uint8_t)((L[j] & 0xF) | ((L[j + QP_QK / 2] & 0xF) << 4));
        qh |= (uint32_t)(L[j] >> 4) << j;
        qh |= (uint32_t)(L[j + QP_QK / 2] >> 4) << (j + QP_QK / 2);
    }
    memcpy(b->qh, &qh, 4);
}

static void q5_1_unpack(const qp_block_q5_1 *b, uint8_t *L)
{
    uint32_t qh;
    memcpy(&qh, b->qh, 4);
    for (int j = 0; j < QP_QK / 2; j++) {
        L[j] = (uint8_t)((b->qs[j] & 0xF) | (((qh >> j) & 1) << 4));
        L[j + QP_QK / 2] = (uint8_t)((b->qs[j] >> 4) | (((qh >> (j + QP_QK / 2)) & 1) << 4));
    }
}

static void q5_1_block_plain(const float *x, qp_block_q5_1 *b)
{
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < QP_QK; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = qp_ks_f16_bits(d);
    b->m = qp_ks_f16_bits(min);
    uint8_t L[QP_QK];
    for (int j = 0; j < QP_QK; j++)
        L[j] = (uint8_t)trunc_q((x[j] - min) * id + 0.5f, 31);
    q5_1_pack(L, b);
}

static void q5_1_block_weighted(const float *x, const float *w, qp_kf_affine_f16_fn search,
                                qp_block_q5_1 *b)
{
    uint8_t L[QP_QK];
    qp_block_q5_1 plain;
    q5_1_block_plain(x, &plain);
    q5_1_unpack(&plain, L);
    const float dp = qp_f16_to_f32(plain.d), mp = qp_f16_to_f32(plain.m);
    double e_plain = 0.0;
    for (int j = 0; j < QP_QK; j++) {
        double diff = (double)((float)L[j] * dp + mp) - x[j];
        e_plain += (double)w[j] * diff * diff;
    }
    uint16_t d_bits, m_bits;
    double e = search(QP_QK, x, w, 31, &d_bits, &m_bits, L);
    if (!(e < e_plain)) {
        *b = plain;
        return;
    }
    b->d = d_bits;
    b->m = m_bits;
    q5_1_pack(L, b);
}

void qp_q5_1_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_f16_fn search)
{
    qp_block_q5_1 *b = dst;
    float w[QP_QK];
    float xbuf[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK, QP_QK, xbuf);
        if (!imp) {
            q5_1_block_plain(x, &b[i]);
        } else {
            qp_ks_block_weights(imp + i * QP_QK, QP_QK, w);
            q5_1_block_weighted(x, w, search, &b[i]);
        }
    }
}

static void quantize_row_q5_1(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q5_1_quantize_rows(src, dst, n, imp, qp_kf_affine_block_f16);
}

static void dequantize_row_q5_1(const void *src, float *dst, int64_t n)
{
    const qp_block_q5_1 *b = src;
    uint8_t L[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float d = qp_f16_to_f32(b[i].d), m = qp_f16_to_f32(b[i].m);
        q5_1_unpack(&b[i], L);
        for (int j = 0; j < QP_QK; j++)
            dst[i * QP_QK + j] = (float)L[j] * d + m;
    }
}

static float vec_dot_q5_1(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q5_1 *x = w_row;
    const qp_block_q8_0 *y = act_row;
    float sum = 0.0f;
    uint8_t L[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        q5_1_unpack(&x[i], L);
        int32_t isum = 0, asum = 0;
        for (int j = 0; j < QP_QK; j++) {
            isum += L[j] * y[i].qs[j];
            asum += y[i].qs[j];
        }
        const float da = qp_f16_to_f32(y[i].d);
        sum += (float)isum * (qp_f16_to_f32(x[i].d) * da) + (float)asum * (qp_f16_to_f32(x[i].m) * da);
    }
    return sum;
}

const qp_qtype qp_qtype_q5_1 = {
    .type = QP_GGML_Q5_1,
    .block_elems = QP_QK,
    .block_bytes = sizeof(qp_block_q5_1),
    .quantize_row = quantize_row_q5_1,
    .dequantize_row = dequantize_row_q5_1,
    .vec_dot_type = QP_GGML_Q8_0,
    .vec_dot = vec_dot_q5_1,
};
