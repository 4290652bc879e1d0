/* iq4_xs.c - IQ4_XS: 256 elements in 8 sub-blocks of 32, IQ4_NL table
 * codes, 6-bit signed sub-block scales under one f16 d (layout in
 * quant/qblocks.h); vec_dot against Q8_K.
 *
 * Quantizer: qp_ks_sym_superblock (kquant_search.h) over the IQ4 table:
 * the exact best real scale per sub-block (sweep), then d and the integer
 * sub-block scales searched against the exact weighted block error.
 * Plain quantization (imp == NULL) minimises the unweighted error. */
#include "quant/qtype_internal.h"

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

void qp_iq4_xs_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                             qp_kf_sym_fn search)
{
    qp_ks_grid g;
    qp_ks_grid_table(&g, qp_iq4_values, 16);
    const qp_ks_sym_spec spec = {.nsub = 8, .sublen = 32, .grid = &g, .lmin = -32, .lmax = 31,
                                .r_lo = 0.6f, .r_hi = 1.25f};
    qp_block_iq4_xs *b = dst;
    float w[QP_QK_K];
    float xbuf[QP_QK_K];
    uint8_t L[QP_QK_K];
    int ls[8];
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float *x = qp_ks_block_input(src + i * QP_QK_K, QP_QK_K, xbuf);
        qp_kf_block_weights(imp ? imp + i * QP_QK_K : NULL, QP_QK_K, w);
        search(&spec, x, w, &b[i].d, ls, L);
        uint16_t sh = 0;
        memset(b[i].scales_l, 0, sizeof b[i].scales_l);
        for (int s = 0; s < 8; s++) {
            const int v = ls[s] + 32;
            b[i].scales_l[s / 2] |= (uint8_t)((v & 0xF) << (4 * (s % 2)));
            sh |= (uint16_t)((v >> 4) << (2 * s));
            for (int j = 0; j < 16; j++)
                b[i].qs[16 * s + j] = (uint8_t)(L[32 * s + j] | (L[32 * s + 16 + j] << 4));
        }
        b[i].scales_h = sh;
    }
}

static void quantize_row_iq4_xs(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_iq4_xs_quantize_rows(src, dst, n, imp, qp_kf_sym_superblock);
}

static void dequantize_row_iq4_xs(const void *src, float *dst, int64_t n)
{
    const qp_block_iq4_xs *b = src;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const float d = qp_f16_to_f32(b[i].d);
        float *y = dst + i * QP_QK_K;
        for (int s = 0; s < 8; s++) {
            const float dl = d * (float)(qp_iq4xs_scale(s, &b[i]) - 32);
            const uint8_t *q = b[i].qs + 16 * s;
            for (int j = 0; j < 16; j++) {
                y[32 * s + j] = dl * (float)qp_iq4_values[q[j] & 0xF];
                y[32 * s + 16 + j] = dl * (float)qp_iq4_values[q[j] >> 4];
            }
        }
    }
}

static float vec_dot_iq4_xs(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_iq4_xs *x = w_row;
    const qp_block_q8_k *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        int32_t isum = 0;
        for (int s = 0; s < 8; s++) {
            const uint8_t *q = x[i].qs + 16 * s;
            const int8_t *a = y[i].qs + 32 * s;
            int32_t dot = 0;
            for (int j = 0; j < 16; j++)
                dot += qp_iq4_values[q[j] & 0xF] * a[j] + qp_iq4_values[q[j] >> 4] * a[j + 16];
            isum += (qp_iq4xs_scale(s, &x[i]) - 32) * dot;
        }
        sum += y[i].d * qp_f16_to_f32(x[i].d) * (float)isum;
    }
    return sum;
}

const qp_qtype qp_qtype_iq4_xs = {
    .type = QP_GGML_IQ4_XS,
    .block_elems = QP_QK_K,
    .block_bytes = sizeof(qp_block_iq4_xs),
    .quantize_row = quantize_row_iq4_xs,
    .dequantize_row = dequantize_row_iq4_xs,
    .vec_dot_type = QP_GGML_Q8_K,
    .vec_dot = vec_dot_iq4_xs,
};
