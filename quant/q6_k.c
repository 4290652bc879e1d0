/* q6_k.c - Q6_K: 256 elements in 16 sub-blocks of 16, 6-bit codes
 * (q - 32), int8 sub-block scales under one f16 d (layout in
 * quant/qblocks.h); vec_dot against Q8_K.
 *
 * Quantizer: qp_ks_sym_superblock (kquant_search.h): the exact best real
 * scale per sub-block (sweep), then d and the integer sub-block scales
 * searched against the exact weighted block error. */
#include "quant/qtype_internal.h"

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

void qp_q6_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_fn search)
{
    qp_ks_grid g;
    qp_ks_grid_uniform(&g, -32, 31); /* level k is code q = k */
    const qp_ks_sym_spec spec = {.nsub = 16, .sublen = 16, .grid = &g, .lmin = -128, .lmax = 127,
                                .r_lo = 0.7f, .r_hi = 1.1f};
    qp_block_q6_k *b = dst;
    float w[QP_QK_K];
    float xbuf[QP_QK_K];
    uint8_t L[QP_QK_K];
    int ls[16];
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK_K, QP_QK_K, xbuf);
        qp_kf_block_weights(imp ? imp + i * QP_QK_K : NULL, QP_QK_K, w);
        search(&spec, x, w, &b[i].d, ls, L);
        for (int s = 0; s < 16; s++)
            b[i].scales[s] = (int8_t)ls[s];
        /* element e = 128h + 32k + l: low nibble in ql[64h + 32(k&1) + l]
         * (high half for k >= 2), top two bits at 2k of qh[32h + l] */
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const uint8_t *q = L + 128 * h + l;
                b[i].ql[64 * h + l] = (uint8_t)((q[0] & 0xF) | ((q[64] & 0xF) << 4));
                b[i].ql[64 * h + 32 + l] = (uint8_t)((q[32] & 0xF) | ((q[96] & 0xF) << 4));
                b[i].qh[32 * h + l] = (uint8_t)((q[0] >> 4) | ((q[32] >> 4) << 2) | ((q[64] >> 4) << 4) |
                                                ((q[96] >> 4) << 6));
            }
    }
}

static void quantize_row_q6_k(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q6_k_quantize_rows(src, dst, n, imp, qp_kf_sym_superblock);
}

/* Code (0..63; the value is code - 32) of element e = 128h + 32k + l. */
static inline int q6_k_code(const qp_block_q6_k *b, int h, int k, int l)
{
    const int lo = (b->ql[64 * h + 32 * (k & 1) + l] >> (k >= 2 ? 4 : 0)) & 0xF;
    return lo | (((b->qh[32 * h + l] >> (2 * k)) & 3) << 4);
}

static void dequantize_row_q6_k(const void *src, float *dst, int64_t n)
{
    const qp_block_q6_k *b = src;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float d = qp_f16_to_f32(b[i].d);
        float *y = dst + i * QP_QK_K;
        for (int s = 0; s < 16; s++) {
            const float dl = d * (float)b[i].scales[s];
            const int h = s / 8, k = (s % 8) / 2, l0 = 16 * (s % 2);
            for (int l = l0; l < l0 + 16; l++)
                *y++ = dl * (float)(q6_k_code(&b[i], h, k, l) - 32);
        }
    }
}

static float vec_dot_q6_k(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_q6_k *x = w_row;
    const qp_block_q8_k *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        int32_t isum = 0;
        for (int s = 0; s < 16; s++) {
            const int h = s / 8, k = (s % 8) / 2, l0 = 16 * (s % 2);
            const int8_t *a = y[i].qs + 16 * s;
            int32_t dot = 0;
            for (int l = 0; l < 16; l++)
                dot += q6_k_code(&x[i], h, k, l0 + l) * a[l];
            dot -= 32 * y[i].bsums[s];
            isum += x[i].scales[s] * dot;
        }
        sum += y[i].d * qp_f16_to_f32(x[i].d) * (float)isum;
    }
    return sum;
}

const qp_qtype qp_qtype_q6_k = {
    .type = QP_GGML_Q6_K,
    .block_elems = QP_QK_K,
    .block_bytes = sizeof(qp_block_q6_k),
    .quantize_row = quantize_row_q6_k,
    .dequantize_row = dequantize_row_q6_k,
    .vec_dot_type = QP_GGML_Q8_K,
    .vec_dot = vec_dot_q6_k,
};
