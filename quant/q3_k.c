/* q3_k.c - Q3_K: 256 elements in 16 sub-blocks of 16, 3-bit codes
 * (q - 4), 6-bit signed sub-block scales under one f16 d (layout in
 * quant/qblocks.h); vec_dot against Q8_K.
 *
 * Quantizer: qp_ks_sym_superblock (kquant_search.h): the exact best real
 * scale per sub-block (sweep), then d and the integer sub-block scales
 * searched against the exact weighted block error. */
#include "quant/qtype_internal.h"

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

void qp_q3_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_fn search)
{
    qp_ks_grid g;
    qp_ks_grid_uniform(&g, -4, 3); /* level k is code q = k */
    const qp_ks_sym_spec spec = {.nsub = 16, .sublen = 16, .grid = &g, .lmin = -32, .lmax = 31,
                                .r_lo = 0.3f, .r_hi = 1.8f};
    qp_block_q3_k *b = dst;
    float w[QP_QK_K];
    float xbuf[QP_QK_K];
    uint8_t L[QP_QK_K];
    int ls[16];
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK_K, QP_QK_K, xbuf);
        qp_kf_block_weights(imp ? imp + i * QP_QK_K : NULL, QP_QK_K, w);
        search(&spec, x, w, &b[i].d, ls, L);
        memset(b[i].scales, 0, sizeof b[i].scales);
        for (int s = 0; s < 16; s++) {
            const int v = ls[s] + 32;
            b[i].scales[s % 8] |= (uint8_t)((v & 0xF) << (s < 8 ? 0 : 4));
            b[i].scales[8 + s % 4] |= (uint8_t)((v >> 4) << (2 * (s / 4)));
        }
        /* element e = 128h + 32k + l: low two bits at 2k of qs[32h + l],
         * the third at bit 4h + k of hmask[l] */
        for (int l = 0; l < 32; l++) {
            unsigned hm = 0;
            for (int h = 0; h < 2; h++) {
                const uint8_t *q = L + 128 * h + l;
                b[i].qs[32 * h + l] = (uint8_t)((q[0] & 3) | ((q[32] & 3) << 2) | ((q[64] & 3) << 4) |
                                                ((q[96] & 3) << 6));
                hm |= (unsigned)(((q[0] >> 2) | ((q[32] >> 2) << 1) | ((q[64] >> 2) << 2) | ((q[96] >> 2) << 3))
                                 << (4 * h));
            }
            b[i].hmask[l] = (uint8_t)hm;
        }
    }
}

static void quantize_row_q3_k(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q3_k_quantize_rows(src, dst, n, imp, qp_kf_sym_superblock);
}

/* Code of element l0+l of sub-block s (0..7; the value is code - 4). */
static inline int q3_k_code(const qp_block_q3_k *b, int h, int k, int l)
{
    return ((b->qs[32 * h + l] >> (2 * k)) & 3) | (((b->hmask[l] >> (4 * h + k)) & 1) << 2);
}

static void dequantize_row_q3_k(const void *src, float *dst, int64_t n)
{
    const qp_block_q3_k *b = src;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float d = qp_f16_to_f32(b[i].d);
        float *y = dst + i * QP_QK_K;
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)(qp_k3_scale(s, b[i].scales) - 32);
            const int h = s / 8, k = (s % 8) / 2, l0 = 16 * (s % 2);
            for (int l = l0; l < l0 + 16; l++)
                *y++ = dl * (float)(q3_k_code(&b[i], h, k, l) - 4);
        }
    }
}

static float vec_dot_q3_k(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q3_k *x = w_row;
    const qp_block_q8_k *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        int32_t isum = 0;
        for (int s = 0; s < 16; s++) {
            const int h = s / 8, k = (s % 8) / 2, l0 = 16 * (s % 2);
            const int8_t *a = y[i].qs + 16 * s;
            int32_t dot = 0;
            for (int l = 0; l < 16; l++)
                dot += q3_k_code(&x[i], h, k, l0 + l) * a[l];
            dot -= 4 * y[i].bsums[s];
            isum += (qp_k3_scale(s, x[i].scales) - 32) * dot;
        }
        sum += y[i].d * qp_f16_to_f32(x[i].d) * (float)isum;
    }
    return sum;
}

const qp_qtype qp_qtype_q3_k = {
    .type = QP_GGML_Q3_K,
    .block_elems = QP_QK_K,
    .block_bytes = sizeof(qp_block_q3_k),
    .quantize_row = quantize_row_q3_k,
    .dequantize_row = dequantize_row_q3_k,
    .vec_dot_type = QP_GGML_Q8_K,
    .vec_dot = vec_dot_q3_k,
};
