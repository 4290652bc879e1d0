/* q5_k.c - Q5_K: 256 elements in 8 sub-blocks of 32, 5-bit codes, 6-bit
 * scale and min per sub-block under f16 d and dmin (layout in
 * quant/qblocks.h); vec_dot against Q8_K.
 *
 * Quantizer: qp_ks_affine_superblock (kquant_search.h), as Q4_K with 32
 * levels. */
#include "quant/qtype_internal.h"

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

void qp_q5_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_fn search)
{
    static const qp_ks_affine_spec spec = {.nsub = 8, .sublen = 32, .qmax = 31, .scmax = 63, .mmax = 63};
    qp_block_q5_k *b = dst;
    float w[QP_QK_K];
    float xbuf[QP_QK_K];
    uint8_t L[QP_QK_K];
    int sc[8], m[8];
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK_K, QP_QK_K, xbuf);
        qp_kf_block_weights(imp ? imp + i * QP_QK_K : NULL, QP_QK_K, w);
        search(&spec, x, w, &b[i].d, &b[i].dmin, sc, m, L);
        qp_k4_pack_scales(sc, m, b[i].scales);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                b[i].qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                b[i].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
    }
}

static void quantize_row_q5_k(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q5_k_quantize_rows(src, dst, n, imp, qp_kf_affine_superblock);
}

/* Code (0..31) of element l of sub-block s. */
static inline int q5_k_code(const qp_block_q5_k *b, int s, int l)
{
    return ((b->qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0xF) | (((b->qh[l] >> s) & 1) << 4);
}

static void dequantize_row_q5_k(const void *src, float *dst, int64_t n)
{
    const qp_block_q5_k *b = src;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float d = qp_f16_to_f32(b[i].d), dmin = qp_f16_to_f32(b[i].dmin);
        float *y = dst + i * QP_QK_K;
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            qp_k4_scale_min(s, b[i].scales, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *y++ = dl * (float)q5_k_code(&b[i], s, l) - ml;
        }
    }
}

static float vec_dot_q5_k(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q5_k *x = w_row;
    const qp_block_q8_k *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        int32_t isum = 0, msum = 0;
        for (int s = 0; s < 8; s++) {
            uint8_t sc, m;
            qp_k4_scale_min(s, x[i].scales, &sc, &m);
            const int8_t *a = y[i].qs + 32 * s;
            int32_t dot = 0;
            for (int l = 0; l < 32; l++)
                dot += q5_k_code(&x[i], s, l) * a[l];
            isum += sc * dot;
            msum += m * (y[i].bsums[2 * s] + y[i].bsums[2 * s + 1]);
        }
        sum += y[i].d * (qp_f16_to_f32(x[i].d) * (float)isum - qp_f16_to_f32(x[i].dmin) * (float)msum);
    }
    return sum;
}

const qp_qtype qp_qtype_q5_k = {
    .type = QP_GGML_Q5_K,
    .block_elems = QP_QK_K,
    .block_bytes = sizeof(qp_block_q5_k),
    .quantize_row = quantize_row_q5_k,
    .dequantize_row = dequantize_row_q5_k,
    .vec_dot_type = QP_GGML_Q8_K,
    .vec_dot = vec_dot_q5_k,
};
