/* qtype_avx2.c - installs the AVX2 kernels that exist into the dispatch
 * table. Each type's AVX2 file exports its functions through
 * quant/qtype_avx2.h; add a line here when one is written. */
#include "quant/qtype_internal.h"

#include "quant/qdot_avx2.h"
#include "quant/quant_rows.h"

void qp_qtype_install_avx2(qp_qtype *table)
{
    (void)table;
    /* dot products (quant/<t>_dot_avx2.c) and activation quantizers
     * (quant/q8_act_avx2.c) */
#define QP_INSTALL_DOT(T, t)                                                                      \
    do {                                                                                          \
        table[QP_GGML_##T].vec_dot = qp_vec_dot_##t##_avx2;                                       \
        table[QP_GGML_##T].vec_dot_x4 = qp_vec_dot_x4_##t##_avx2;                                 \
    } while (0)
    QP_INSTALL_DOT(Q8_0, q8_0);
    QP_INSTALL_DOT(Q4_0, q4_0);
    QP_INSTALL_DOT(Q4_1, q4_1);
    QP_INSTALL_DOT(Q5_0, q5_0);
    QP_INSTALL_DOT(Q5_1, q5_1);
    QP_INSTALL_DOT(IQ4_NL, iq4_nl);
    QP_INSTALL_DOT(Q2_K, q2_k);
    QP_INSTALL_DOT(Q3_K, q3_k);
    QP_INSTALL_DOT(Q4_K, q4_k);
    QP_INSTALL_DOT(Q5_K, q5_k);
    QP_INSTALL_DOT(Q6_K, q6_k);
    QP_INSTALL_DOT(IQ4_XS, iq4_xs);
#undef QP_INSTALL_DOT
    table[QP_GGML_Q8_0].quantize_row = qp_quantize_row_q8_0_avx2;
    table[QP_GGML_Q8_K].quantize_row = qp_quantize_row_q8_k_avx2;
    /* weight quantizers: the fast searches' AVX2 kernels (quant/<t>_avx2.c) */
    table[QP_GGML_Q2_K].quantize_row = qp_q2_k_quantize_row_avx2;
    table[QP_GGML_Q3_K].quantize_row = qp_q3_k_quantize_row_avx2;
    table[QP_GGML_Q4_K].quantize_row = qp_q4_k_quantize_row_avx2;
    table[QP_GGML_Q5_K].quantize_row = qp_q5_k_quantize_row_avx2;
    table[QP_GGML_Q6_K].quantize_row = qp_q6_k_quantize_row_avx2;
    table[QP_GGML_IQ4_XS].quantize_row = qp_iq4_xs_quantize_row_avx2;
    table[QP_GGML_IQ4_NL].quantize_row = qp_iq4_nl_quantize_row_avx2;
    table[QP_GGML_Q4_0].quantize_row = qp_q4_0_quantize_row_avx2;
    table[QP_GGML_Q4_1].quantize_row = qp_q4_1_quantize_row_avx2;
    table[QP_GGML_Q5_0].quantize_row = qp_q5_0_quantize_row_avx2;
    table[QP_GGML_Q5_1].quantize_row = qp_q5_1_quantize_row_avx2;
}
