/* kquant_fast_kern.h - what the scalar and AVX2 kernel sets of the fast
 * searches share: the kernel contracts, the fixed order in which lanes
 * are combined, and the rounding. Included by quant/kquant_fast.c and
 * quant/kquant_fast_avx2.c only.
 *
 * Kernels (each file defines all of them as static inline functions with
 * these names, then includes kquant_fast_impl.h). n is a multiple of 8;
 * "element-parallel" kernels keep 8 partial sums, lane l taking elements
 * i = l (mod 8) in increasing i, combined by kf_tree8; "lane-parallel"
 * kernels score 8 candidates at once, candidate c in lane c, summing the
 * elements in increasing i. Codes: rnd(clamp(v)) for uniform grids, the
 * count of grid midpoints below v for tables; products are formed exactly
 * as written below (no fused multiply-add anywhere).
 *
 *  kf_minmax(n, x, w, thr, *xmin, *xmax): over elements with w > thr
 *      (+inf/-inf when none); element-parallel.
 *  kf_stats(n, x, w, *sw, *sx, *sxx, *xmin, *xmax): sum w, sum w*x,
 *      sum (w*x)*x, and kf_minmax with thr = 0.
 *  kf_aff_cand8(n, x, w, top, t[8], off, sq, sqq, sqx): lane-parallel;
 *      q = rnd(clamp((x - off)*t, 0, top)), wq = w*q; sq += wq,
 *      sqq += wq*q, sqx += wq*x.
 *  kf_aff_moments(n, x, w, top, t, off, *sq, *sqq, *sqx): the same for one
 *      candidate, element-parallel.
 *  kf_aff_quant(n, x, w, top, dl, ml, L, mom[4]): id = dl != 0 ? 1/dl : 0,
 *      q = rnd(clamp((x + ml)*id, 0, top)), diff = (dl*q - ml) - x;
 *      mom = {sum w*diff*diff, sum wq, sum wq*q, sum wq*x}; writes L = q.
 *  kf_aff_err8(n, x, w, top, dl[8], ml[8], e[8]): lane-parallel errors of
 *      kf_aff_quant.
 *  kf_sym_cand8(n, x, w, g, t[8], sqx, sqq): lane-parallel; v = lev(x*t),
 *      wv = w*v; sqx += wv*x, sqq += wv*v.
 *  kf_sym_quant(n, x, w, g, dl, L, mom[3]): id as above, k = index(x*id),
 *      diff = dl*lev[k] - x; mom = {sum w*diff*diff, sum wv*x, sum wv*v};
 *      writes L = k.
 *  kf_sym_err4x2(n, xa, wa, xb, wb, g, dl[8], e[8]): lane-parallel errors
 *      of kf_sym_quant, lanes 0-3 on the elements (xa, wa), lanes 4-7 on
 *      (xb, wb).
 *  kf_model8(nsub, v, H, d[8], lmin, lmax, e[8]): lane-parallel model of
 *      the super-scale candidates d: id = d != 0 ? 1/d : 0, l = rnd(clamp(
 *      v*id, lmin, lmax)), diff = d*l - v, e += (H*diff)*diff.
 *  kf_f16_round8(v[8]): v = qp_ks_f16_round(v), for finite v.
 *  kf_fit8(sw[8], sx[8], sxx[8], sq[8], sqq[8], sqx[8], s[8], m[8], e[8]): the
 *      least-squares (s, m <= 0) of each candidate's codes and its error,
 *      in double, lane by lane (INFINITY when degenerate). */
#ifndef QP_KQUANT_FAST_KERN_H
#define QP_KQUANT_FAST_KERN_H

#include "quant/kquant_fast.h"

/* Both kernel sets must round every product and sum on its own: gcc does
 * not contract under -std=c11; clang contracts by default, so say so. */
#if defined(__clang__)
#pragma clang fp contract(off)
#endif

#define KF_MAGIC 12582912.0f /* 1.5 * 2^23: v + M - M rounds to nearest even */

/* The combining order of 8 partial sums (a register tree in AVX2). */
static inline float kf_tree8(const float *a)
{
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

/* clamp then round half to even, as a float; NaN -> lo. */
static inline float kf_rnd_clamp(float v, float lo, float hi)
{
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    return (v + KF_MAGIC) - KF_MAGIC;
}

#endif
