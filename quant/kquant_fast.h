/* kquant_fast.h - the production searches of the K and IQ4 quantizers
 * (and of Q4_0/Q4_1/Q5_0/Q5_1 with importance): the same models as
 * kquant_search.h, whose exhaustive searches stay as the reference
 * (quant/qtype_ref.h), solved with a fraction of the work:
 *
 *  - sub-block parameters from closed-form starts (the range, or the
 *    largest element mapped around the ends of the grid): eight candidate
 *    inverse scales scored together, one SIMD lane each, from the moments
 *    of their codes (sum w q, sum w q^2, sum w q x), which give each
 *    candidate's least-squares scale (and min) and error in closed form;
 *    least-squares refinement where it pays (Q2_K; every type with
 *    importance, which also gets starts over the weighted elements' range);
 *  - super-scales chosen on a quadratic model of the sub-block errors
 *    (O(sub-blocks) per candidate, eight candidates at once), the integer
 *    sub-block scales by the same model, and only a few neighbours scored
 *    exactly before one exact pass writes the codes;
 *  - with importance, a least-squares refit of the super-scale(s) from
 *    the moments of the exact pass, kept when the exact error drops.
 *
 * Every hot loop is a kernel with a portable and an AVX2 twin that perform
 * the same float operations in the same order (kquant_fast_impl.h holds
 * the search, compiled once per kernel set), so both produce the same
 * bytes. The signatures equal kquant_search.h's, so a type file takes
 * either search. Limits (those of the K types): nsub 8 or 16, sublen a
 * multiple of 8 up to QP_KS_MAX_SUB. */
#ifndef QP_KQUANT_FAST_H
#define QP_KQUANT_FAST_H

#include "quant/kquant_search.h"

typedef double (*qp_kf_affine_fn)(const qp_ks_affine_spec *sp, const float *x, const float *w,
                                  uint16_t *d_bits, uint16_t *dmin_bits, int *sc, int *m,
                                  uint8_t *L);
typedef double (*qp_kf_sym_fn)(const qp_ks_sym_spec *sp, const float *x, const float *w,
                               uint16_t *d_bits, int *ls, uint8_t *L);
/* One-scale f16 blocks (IQ4_NL): as qp_ks_sym_block_f16. */
typedef double (*qp_kf_sym_f16_fn)(int n, const float *x, const float *w, const qp_ks_grid *g,
                                   uint16_t *d_bits, uint8_t *L);

/* nblk (<= 16) one-scale blocks of n elements each at once (IQ4_NL rows):
 * d_bits[nblk], L[nblk * n]; each block as qp_kf_sym_block_f16. */
typedef void (*qp_kf_sym_blocks_fn)(int nblk, int n, const float *x, const float *w,
                                    const qp_ks_grid *g, uint16_t *d_bits, uint8_t *L);

/* One block with f16 scale and offset (Q4_1, Q5_1 with importance): as
 * qp_ks_affine_block_f16. */
typedef double (*qp_kf_affine_f16_fn)(int n, const float *x, const float *w, int qmax,
                                      uint16_t *d_bits, uint16_t *m_bits, uint8_t *L);

/* Portable kernels. */
double qp_kf_affine_superblock(const qp_ks_affine_spec *sp, const float *x, const float *w,
                               uint16_t *d_bits, uint16_t *dmin_bits, int *sc, int *m,
                               uint8_t *L);
double qp_kf_sym_superblock(const qp_ks_sym_spec *sp, const float *x, const float *w,
                            uint16_t *d_bits, int *ls, uint8_t *L);
double qp_kf_sym_block_f16(int n, const float *x, const float *w, const qp_ks_grid *g,
                           uint16_t *d_bits, uint8_t *L);
void qp_kf_sym_blocks_f16(int nblk, int n, const float *x, const float *w, const qp_ks_grid *g,
                          uint16_t *d_bits, uint8_t *L);
double qp_kf_affine_block_f16(int n, const float *x, const float *w, int qmax, uint16_t *d_bits,
                              uint16_t *m_bits, uint8_t *L);

/* AVX2 twins (quant/kquant_fast_avx2.c); call only when qp_cpu_get().avx2. */
double qp_kf_affine_superblock_avx2(const qp_ks_affine_spec *sp, const float *x, const float *w,
                                    uint16_t *d_bits, uint16_t *dmin_bits, int *sc, int *m,
                                    uint8_t *L);
double qp_kf_sym_superblock_avx2(const qp_ks_sym_spec *sp, const float *x, const float *w,
                                 uint16_t *d_bits, int *ls, uint8_t *L);
double qp_kf_sym_block_f16_avx2(int n, const float *x, const float *w, const qp_ks_grid *g,
                                uint16_t *d_bits, uint8_t *L);
void qp_kf_sym_blocks_f16_avx2(int nblk, int n, const float *x, const float *w, const qp_ks_grid *g,
                               uint16_t *d_bits, uint8_t *L);
double qp_kf_affine_block_f16_avx2(int n, const float *x, const float *w, int qmax, uint16_t *d_bits,
                                   uint16_t *m_bits, uint8_t *L);

/* Block weights as qp_ks_block_weights without the sum (the searches do
 * not need it): imp scaled so the largest is 1, non-positive/NaN/inf as 0,
 * all ones when imp is NULL or all zero. Same values as
 * qp_ks_block_weights. */
void qp_kf_block_weights(const float *imp, int n, float *w);

#endif
