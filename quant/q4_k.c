/* q4_k.c - Q4_K: 256 elements in 8 sub-blocks of 32, 4-bit codes, 6-bit
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

void qp_q4_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_fn search)
{
    static const qp_ks_affine_spec spec = {.nsub = 8, .sublen = 32, .qmax = 15, .scmax = 63, .mmax = 63};
    qp_block_q4_k *b = dst;
    float w[QP_QK_K];
    float xbuf[QP_QK_K];
    uint8_t L[QP_QK_K];
    int sc[8], m[8];
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK_K, QP_QK_K, xbuf);
        qp_kf_block_weights(imp ? imp + i * QP_QK_K : NULL, QP_QK_K, w);
        search(&spec, x, w, &b[i].d, &b[i].dmin, sc, m, L);
        qp_k4_pack_scales(sc, m, b[i].scales);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

static void quantize_row_q4_k(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q4_k_quantize_rows(src, dst, n, imp, qp_kf_affine_superblock);
}

static void dequantize_row_q4_k(const void *src, float *dst, int64_t n)
{
    const qp_block_q4_k *b = src;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float d = qp_f16_to_f32(b[i].d), dmin = qp_f16_to_f32(b[i].dmin);
        float *y = dst + i * QP_QK_K;
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            qp_k4_scale_min(s, b[i].scales, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = b[i].qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            for (int l = 0; l < 32; l++)
                *y++ = dl * (float)((q[l] >> shift) & 0xF) - ml;
        }
    }
}

static float vec_dot_q4_k(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q4_k *x = w_row;
    const qp_block_q8_k *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            qp_k4_scale_min(s, x[i].scales, &sc, &m);
            const uint8_t *q = x[i].qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            const int8_t *a = y[i].qs + 32 * s;
            int32_t dot = 0;
            for (int l = 0; l < 32; l++)
                dot += ((q[l] >> shift) & 0xF) * a[l];
            isum += sc * dot;
            msum += m * (y[i].bsums[2 * s] + y[i].bsums[2 * s + 1]);
        }
        sum += y[i].d * (qp_f16_to_f32(x[i].d) * (float)isum - qp_f16_to_f32(x[i].dmin) * (float)msum);
    }
    return sum;
}

const qp_qtype qp_qtype_q4_k = {
    .type = QP_GGML_Q4_K,
    .block_elems = QP_QK_K,
    .block_bytes = sizeof(qp_block_q4_k),
    .quantize_row = quantize_row_q4_k,
    .dequantize_row = dequantize_row_q4_k,
    .vec_dot_type = QP_GGML_Q8_K,
    .vec_dot = vec_dot_q4_k,
};
