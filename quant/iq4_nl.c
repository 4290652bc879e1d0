/* iq4_nl.c - IQ4_NL: 32 elements, f16 d, y = d * kvalues[q] with ggml's
 * fixed non-uniform 16-level table (layout in quant/qblocks.h); vec_dot
 * against Q8_0.
 *
 * Quantizer: the exact weighted-least-squares scale over every assignment
 * of table levels (kquant_search's sweep), then the best f16 neighbour.
 * Plain quantization (imp == NULL) minimises the unweighted error. */
#include "quant/qtype_internal.h"

#include "quant/kquant_fast.h"
#include "quant/quant_rows.h"
#include "quant/qblocks.h"

const int8_t qp_iq4_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                  1,    13,   25,  38,  53,  69,  89,  113};

void qp_iq4_nl_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                             qp_kf_sym_blocks_fn search)
{
    enum { G = 8 }; /* blocks searched together */
    qp_block_iq4_nl *b = dst;
    qp_ks_grid g;
    qp_ks_grid_table(&g, qp_iq4_values, 16);
    float w[G * QP_QK];
    float xbuf[G * QP_QK];
    uint8_t L[G * QP_QK];
    uint16_t d[G];
    const int64_t nb = n / QP_QK;
    for (int64_t i = 0; i < nb; i += G) {
        const int k = nb - i < G ? (int)(nb - i) : G;
        for (int j = 0; j < k; j++) /* weights normalised per block */
            qp_kf_block_weights(imp ? imp + (i + j) * QP_QK : NULL, QP_QK, w + j * QP_QK);
        const float *x = qp_ks_block_input(src + i * QP_QK, k * QP_QK, xbuf);
        search(k, QP_QK, x, w, &g, d, L);
        for (int j = 0; j < k; j++) {
            b[i + j].d = d[j];
            for (int l = 0; l < QP_QK / 2; l++)
                b[i + j].qs[l] = (uint8_t)(L[j * QP_QK + l] | (L[j * QP_QK + l + QP_QK / 2] << 4));
        }
    }
}

static void quantize_row_iq4_nl(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_iq4_nl_quantize_rows(src, dst, n, imp, qp_kf_sym_blocks_f16);
}

static void dequantize_row_iq4_nl(const void *src, float *dst, int64_t n)
{
    const qp_block_iq4_nl *b = src;
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const float d = qp_f16_to_f32(b[i].d);
        float *y = dst + i * QP_QK;
        for (int j = 0; j < QP_QK / 2; j++) {
            y[j] = d * (float)qp_iq4_values[b[i].qs[j] & 0xF];
            y[j + QP_QK / 2] = d * (float)qp_iq4_values[b[i].qs[j] >> 4];
        }
    }
}

static float vec_dot_iq4_nl(int64_t n, const void *w_row, const void *act_row)
{
    const qp_block_iq4_nl *x = w_row;
    const qp_block_q8_0 *y = act_row;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / QP_QK; i++) {
        int32_t isum = 0;
        for (int j = 0; j < QP_QK / 2; j++) {
            isum += qp_iq4_values[x[i].qs[j] & 0xF] * y[i].qs[j];
            isum += qp_iq4_values[x[i].qs[j] >> 4] * y[i].qs[j + QP_QK / 2];
        }
        sum += (float)isum * (qp_f16_to_f32(x[i].d) * qp_f16_to_f32(y[i].d));
    }
    return sum;
}

const qp_qtype qp_qtype_iq4_nl = {
    .type = QP_GGML_IQ4_NL,
    .block_elems = QP_QK,
    .block_bytes = sizeof(qp_block_iq4_nl),
    .quantize_row = quantize_row_iq4_nl,
    .dequantize_row = dequantize_row_iq4_nl,
    .vec_dot_type = QP_GGML_Q8_0,
    .vec_dot = vec_dot_iq4_nl,
};
