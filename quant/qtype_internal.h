/* qtype_internal.h - what the table (qtype.c) needs from the type files. */
#ifndef QP_QTYPE_INTERNAL_H
#define QP_QTYPE_INTERNAL_H

#include "quant/qtype.h"

extern const qp_qtype qp_qtype_f32;
extern const qp_qtype qp_qtype_f16;
extern const qp_qtype qp_qtype_bf16;
extern const qp_qtype qp_qtype_q4_0;
extern const qp_qtype qp_qtype_q4_1;
extern const qp_qtype qp_qtype_q5_0;
extern const qp_qtype qp_qtype_q5_1;
extern const qp_qtype qp_qtype_q8_0;
extern const qp_qtype qp_qtype_q2_k;
extern const qp_qtype qp_qtype_q3_k;
extern const qp_qtype qp_qtype_q4_k;
extern const qp_qtype qp_qtype_q5_k;
extern const qp_qtype qp_qtype_q6_k;
extern const qp_qtype qp_qtype_q8_k;
extern const qp_qtype qp_qtype_iq4_nl;
extern const qp_qtype qp_qtype_iq4_xs;

/* Defined in quant/qtype_avx2.c (compiled with -mavx2 -mfma -mf16c): writes
 * the AVX2 kernels of every type that has them into `table`. */
void qp_qtype_install_avx2(qp_qtype *table);

#endif
