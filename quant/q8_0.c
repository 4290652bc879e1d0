/* q8_0.c - Q8_0: blocks of 32 int8 with one f16 scale (layout in
 * quant/qblocks.h). Also the activation type of Q4_0..Q5_1, Q8_0, IQ4_NL.
 *
 * Without importance the quantizer is ggml's (d = amax/127, round half away
 * from zero), so the bytes match llama.cpp exactly; with importance the
 * scale is searched against the weighted error. */
#include "quant/qtype_internal.h"

#include <math.h>

#include "quant/kquant_search.h"
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

static double q8_0_block_error(const float *x, const float *w, const qp_block_q8_0 *b)
{
    const float d = qp_f16_to_f32(b->d);
    double e = 0.0;
    for (int j = 0; j < QP_QK; j++) {
        double diff = (double)((float)b->qs[j] * d) - x[j];
        e += (double)w[j] * diff * diff;
    }
    return e;
}

/* Weighted: scales from amax/127 down to amax/(127 + 4) (the largest
 * element may clip when that helps the rest), each rounded to f16, codes
 * re-rounded for the f16 value; keep the least error. */
static void q8_0_block_weighted(const float *x, const float *w, qp_block_q8_0 *b)
{
    q8_0_block_plain(x, b);
    double best = q8_0_block_error(x, w, b);
    float amax = 0.0f;
    for (int j = 0; j < QP_QK; j++)
        amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    if (amax == 0.0f)
        return;
    qp_block_q8_0 t;
    for (int k = -4; k <= 8; k++) {
        t.d = qp_ks_f16_bits(amax / (127.0f + 0.5f * (float)k));
        const float d = qp_f16_to_f32(t.d);
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (int j = 0; j < QP_QK; j++) {
            float v = x[j] * id;
            int q = qp_ks_clampi(qp_ks_nearest_int(v), -128, 127);
            t.qs[j] = (int8_t)q;
        }
        double e = q8_0_block_error(x, w, &t);
        if (e < best) {
            best = e;
            *b = t;
        }
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
            qp_ks_block_weights(imp + i * QP_QK, QP_QK, w);
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
