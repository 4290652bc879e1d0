/* q8_k.c - Q8_K: the activation type of the K types and IQ4_XS. 256
 * int8 with an f32 scale and per-16 sums (layout in quant/qblocks.h).
 *
 * Quantized as ggml does (the largest magnitude maps to -127, so codes stay
 * within -127..127), which keeps the integer dot products of the weight
 * types overflow-free. Activations are quantized on the hot path, so `imp`
 * is ignored. No vec_dot: nothing is stored as Q8_K. */
#include "quant/qtype_internal.h"

#include <math.h>

#include "quant/kquant_search.h"
#include "quant/qblocks.h"

static void quantize_row_q8_k(const float *src, void *dst, int64_t n, const float *imp)
{
    (void)imp;
    qp_block_q8_k *b = dst;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float *x = src + i * QP_QK_K;
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QP_QK_K; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (!(amax > 0.0f) || !isfinite(amax)) {
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QP_QK_K; j++)
            b[i].qs[j] = (int8_t)qp_ks_clampi(qp_ks_nearest_int(iscale * x[j]), -127, 127);
        for (int s = 0; s < QP_QK_K / 16; s++) {
            int sum = 0;
            for (int l = 0; l < 16; l++)
                sum += b[i].qs[16 * s + l];
            b[i].bsums[s] = (int16_t)sum;
        }
        b[i].d = 1.0f / iscale;
    }
}

static void dequantize_row_q8_k(const void *src, float *dst, int64_t n)
{
    const qp_block_q8_k *b = src;
    for (int64_t i = 0; i < n / QP_QK_K; i++)
        for (int j = 0; j < QP_QK_K; j++)
            dst[i * QP_QK_K + j] = b[i].d * (float)b[i].qs[j];
}

const qp_qtype qp_qtype_q8_k = {
    .type = QP_GGML_Q8_K,
    .block_elems = QP_QK_K,
    .block_bytes = sizeof(qp_block_q8_k),
    .quantize_row = quantize_row_q8_k,
    .dequantize_row = dequantize_row_q8_k,
    .vec_dot_type = QP_GGML_Q8_K,
    .vec_dot = NULL,
};
