/* q8_0.c - Q8_0: blocks of 32 int8 with one f16 scale (layout in
 * quant/qblocks.h). Also the activation type of Q4_0..Q5_1, Q8_0, IQ4_NL.
 *
 * Without importance the quantizer is ggml's (d = amax/127, round half away
 * from zero), so the bytes match llama.cpp exactly; with importance the
 * scale is searched against the weighted error. */
#include "quant/qtype_internal.h"

#include <math.h>

#include "quant/kquant_fast.h"
#include "quant/qblocks.h"

/* int8 of roundf(v) for |v| <= 127.5; NaN -> 0. */
static int8_t round_i8(float v)
{
    if (!(v > -127.5f))
        return v < 0 ? -127 : 0;
    if (v > 127.0f)
        return 127;
    return (int8_t)roundf(v);
}

/* ggml's reference: the largest magnitude maps to +-127. */
static void q8_0_block_plain(const float *x, qp_block_q8_0 *b)
{
    float amax = 0.0f;
    for (int j = 0; j < QP_QK; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = qp_ks_f16_bits(d);
    for (int j = 0; j < QP_QK; j++)
        b->qs[j] = round_i8(x[j] * id);
}

/* Weighted: ggml's block, or one of the scales amax/(127 + k/2), k = -4..11
 * (the largest element may clip when that helps the rest), each rounded to
 * f16 with codes re-rounded for the f16 value; the least weighted error
 * wins. The sixteen scales are scored eight at a time, one per lane (float
 * sums in element order), which the compiler vectorizes. */
static void q8_0_block_weighted(const float *x, const float *w, qp_block_q8_0 *b)
{
    q8_0_block_plain(x, b);
    float amax = 0.0f;
    for (int j = 0; j < QP_QK; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    if (amax == 0.0f)
        return;
    float best;
    {
        const float d = qp_f16_to_f32(b->d);
        float e = 0.0f;
        for (int j = 0; j < QP_QK; j++) {
            const float diff = (float)b->qs[j] * d - x[j];
            e += (w[j] * diff) * diff;
        }
        best = e;
    }
    int best_k = -1;
    float best_d = 0.0f;
    for (int g = 0; g < 2; g++) {
        float d[8], id[8], e[8] = {0};
        for (int l = 0; l < 8; l++) {
            d[l] = qp_f16_to_f32(qp_ks_f16_bits(amax / (127.0f + 0.5f * (float)(8 * g + l - 4))));
            id[l] = d[l] != 0.0f ? 1.0f / d[l] : 0.0f;
        }
        for (int j = 0; j < QP_QK; j++)
            for (int l = 0; l < 8; l++) {
                float v = x[j] * id[l];
                v = v > -128.0f ? v : -128.0f;
                v = v < 127.0f ? v : 127.0f;
                v = (v + 12582912.0f) - 12582912.0f; /* nearest, ties to even */
                const float diff = v * d[l] - x[j];
                e[l] += (w[j] * diff) * diff;
            }
        for (int l = 0; l < 8; l++)
            if (e[l] < best) {
                best = e[l];
                best_k = 8 * g + l;
                best_d = d[l];
            }
    }
    if (best_k < 0)
        return;
    b->d = qp_ks_f16_bits(best_d);
    const float id = 1.0f / best_d;
    for (int j = 0; j < QP_QK; j++) {
        float v = x[j] * id;
        v = v > -128.0f ? v : -128.0f;
        v = v < 127.0f ? v : 127.0f;
        b->qs[j] = (int8_t)(int)((v + 12582912.0f) - 12582912.0f);
    }
}

static void quantize_row_q8_0(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_block_q8_0 *b = dst;
    float w[QP_QK];
    float xbuf[QP_QK];
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK, QP_QK, xbuf);
        if (!imp) {
            q8_0_block_plain(x, &b[i]);
        } else {
            qp_kf_block_weights(imp + i * QP_QK, QP_QK, w);
            q8_0_block_weighted(x, w, &b[i]);
        }
    }
}

static void dequantize_row_q8_0(const void *src, float *dst, int64_t n)
{
    const qp_block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float d = qp_f16_to_f32(b[i].d);
        for (int j = 0; j < QP_QK; j++)
            dst[i * QP_QK + j] = (float)b[i].qs[j] * d;
    }
}

static float vec_dot_q8_0(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q8_0 *x = w_row;
    const qp_block_q8_0 *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < QP_QK; j++)
            isum += (int32_t)x[i].qs[j] * y[i].qs[j];
        sum += (float)isum * (qp_f16_to_f32(x[i].d) * qp_f16_to_f32(y[i].d));
    }
    return sum;
}

const qp_qtype qp_qtype_q8_0 = {
    .type = QP_GGML_Q8_0,
    .block_elems = QP_QK,
    .block_bytes = sizeof(qp_block_q8_0),
    .quantize_row = quantize_row_q8_0,
    .dequantize_row = dequantize_row_q8_0,
    .vec_dot_type = QP_GGML_Q8_0,
    .vec_dot = vec_dot_q8_0,
};
