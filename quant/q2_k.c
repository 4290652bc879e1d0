/* q2_k.c - Q2_K: 256 elements in 16 sub-blocks of 16, 2-bit codes, 4-bit
 * scale and min per sub-block under f16 d and dmin (layout in
 * quant/qblocks.h); vec_dot against Q8_K.
 *
 * Quantizer: qp_ks_affine_superblock (kquant_search.h): least-squares
 * scale and min per sub-block, then d/dmin and the integer scales/mins
 * searched against the exact weighted block error. */
#include "quant/qtype_internal.h"

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

void qp_q2_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_fn search)
{
    static const qp_ks_affine_spec spec = {.nsub = 16, .sublen = 16, .qmax = 3, .scmax = 15, .mmax = 15};
    qp_block_q2_k *b = dst;
    float w[QP_QK_K];
    float xbuf[QP_QK_K];
    uint8_t L[QP_QK_K];
    int sc[16], m[16];
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK_K, QP_QK_K, xbuf);
        qp_kf_block_weights(imp ? imp + i * QP_QK_K : NULL, QP_QK_K, w);
        search(&spec, x, w, &b[i].d, &b[i].dmin, sc, m, L);
        for (int j = 0; j < 16; j++)
            b[i].scales[j] = (uint8_t)(sc[j] | (m[j] << 4));
        /* element e = 128h + 32k + l at bits 2k of qs[32h + l] */
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = L + 128 * h + l;
                b[i].qs[32 * h + l] = (uint8_t)(q[0] | (q[32] << 2) | (q[64] << 4) | (q[96] << 6));
            }
    }
}

static void quantize_row_q2_k(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q2_k_quantize_rows(src, dst, n, imp, qp_kf_affine_superblock);
}

static void dequantize_row_q2_k(const void *src, float *dst, int64_t n)
{
    const qp_block_q2_k *b = src;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float d = qp_f16_to_f32(b[i].d), dmin = qp_f16_to_f32(b[i].dmin);
        float *y = dst + i * QP_QK_K;
        for (int s = 0; s < 16; s++) { /* sub-block s = elements 16s..16s+15 */
            const float dl = d * (float)(b[i].scales[s] & 0xF);
            const float ml = dmin * (float)(b[i].scales[s] >> 4);
            const int h = s / 8, k = (s % 8) / 2, l0 = 16 * (s % 2);
            for (int l = l0; l < l0 + 16; l++)
                *y++ = dl * (float)((b[i].qs[32 * h + l] >> (2 * k)) & 3) - ml;
        }
    }
}

static float vec_dot_q2_k(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q2_k *x = w_row;
    const qp_block_q8_k *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 16; s++) {
            const int h = s / 8, k = (s % 8) / 2, l0 = 16 * (s % 2);
            const int8_t *a = y[i].qs + 16 * s;
            int32_t dot = 0;
            for (int l = 0; l < 16; l++)
                dot += ((x[i].qs[32 * h + l0 + l] >> (2 * k)) & 3) * a[l];
            isum += (x[i].scales[s] & 0xF) * dot;
            msum += (x[i].scales[s] >> 4) * y[i].bsums[s];
        }
        sum += y[i].d * (qp_f16_to_f32(x[i].d) * (float)isum - qp_f16_to_f32(x[i].dmin) * (float)msum);
    }
    return sum;
}

const qp_qtype qp_qtype_q2_k = {
    .type = QP_GGML_Q2_K,
    .block_elems = QP_QK_K,
    .block_bytes = sizeof(qp_block_q2_k),
    .quantize_row = quantize_row_q2_k,
    .dequantize_row = dequantize_row_q2_k,
    .vec_dot_type = QP_GGML_Q8_K,
    .vec_dot = vec_dot_q2_k,
};
