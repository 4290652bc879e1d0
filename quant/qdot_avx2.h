/* qdot_avx2.h - the AVX2 dot-product kernels (quant/<t>_dot_avx2.c) and
 * activation quantizers (quant/q8_act_avx2.c), installed into the dispatch
 * table by quant/qtype_avx2.c. Signatures are qtype.h's. */
#ifndef QP_QDOT_AVX2_H
#define QP_QDOT_AVX2_H

#include <stdint.h>

#define QP_DOT_AVX2_DECL(t)                                                                       \
    float qp_vec_dot_##t##_avx2(int64_t n, const void *w_row, const void *act_row);              \
    void qp_vec_dot_x4_##t##_avx2(int64_t n, const void *w_row, const void *act_rows,             \
                                  uint64_t act_stride, float *out);

QP_DOT_AVX2_DECL(q8_0)
QP_DOT_AVX2_DECL(q4_0)
QP_DOT_AVX2_DECL(q4_1)
QP_DOT_AVX2_DECL(q5_0)
QP_DOT_AVX2_DECL(q5_1)
QP_DOT_AVX2_DECL(iq4_nl)
QP_DOT_AVX2_DECL(q2_k)
QP_DOT_AVX2_DECL(q3_k)
QP_DOT_AVX2_DECL(q4_k)
QP_DOT_AVX2_DECL(q5_k)
QP_DOT_AVX2_DECL(q6_k)
QP_DOT_AVX2_DECL(iq4_xs)

#undef QP_DOT_AVX2_DECL

/* Bit-exact twins of the scalar Q8_0 / Q8_K quantize_row (Q8_0 with
 * importance defers to the scalar search). */
void qp_quantize_row_q8_0_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_quantize_row_q8_k_avx2(const float *src, void *dst, int64_t n, const float *imp);

#endif
