/* quant_rows.h - the row quantizers of the searched types, parameterised by
 * their block search, so that the production (fast, quant/kquant_fast.h),
 * the AVX2 twin and the exhaustive reference (quant/kquant_search.h) share
 * one packing code; and the AVX2 row kernels installed by
 * quant/qtype_avx2.c. Internal to quant/. */
#ifndef QP_QUANT_ROWS_H
#define QP_QUANT_ROWS_H

#include <stdint.h>

#include "quant/kquant_fast.h"

void qp_q2_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_fn search);
void qp_q4_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_fn search);
void qp_q5_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_fn search);
void qp_q3_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_fn search);
void qp_q6_k_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_fn search);
void qp_iq4_xs_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                             qp_kf_sym_fn search);
/* Q4_0 / Q5_0: the search is used with importance only (else ggml's bytes). */
void qp_q4_0_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_f16_fn search);
void qp_q5_0_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_sym_f16_fn search);
/* Q4_1 / Q5_1: likewise. */
void qp_q4_1_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_f16_fn search);
void qp_q5_1_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                           qp_kf_affine_f16_fn search);
void qp_iq4_nl_quantize_rows(const float *src, void *dst, int64_t n, const float *imp,
                             qp_kf_sym_blocks_fn search);

/* AVX2 row quantizers (installed by quant/qtype_avx2.c). */
void qp_q2_k_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q3_k_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q4_k_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q5_k_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q6_k_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_iq4_xs_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_iq4_nl_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q4_0_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q4_1_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q5_0_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);
void qp_q5_1_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp);

#endif
