/* kquant_search.h - the searches shared by the block quantizers.
 *
 * Every quantizer minimises the weighted squared error
 *     E = sum_i w_i (y_i - x_i)^2
 * of a block, where y is exactly what the dequantizer will produce (the same
 * float operations in the same order), w the importance weights (all 1 when
 * the caller has none). The pieces:
 *
 *  - grids: the levels a code can take (uniform integers, or the IQ4 table);
 *  - qp_ks_sym_scale: the exact best real scale s for x ~ s * level[L]
 *    (a sweep over every point where some element changes level);
 *  - qp_ks_affine_fit: x ~ s * q + m with q in 0..qmax (grid of starting
 *    inverse scales, each refined by alternating least squares);
 *  - qp_ks_sym_superblock / qp_ks_affine_superblock: the two-level K-type
 *    problem (f16 super-scale(s) times small integer sub-block scales):
 *    best real parameters per sub-block first; super-scale candidates
 *    ranked by a quadratic model of the sub-block errors; the best few
 *    evaluated exactly, each sub-block taking the best of the integer
 *    neighbours of its scale (and min); then least-squares refits of the
 *    super-scale(s) while the exact error drops.
 *
 * Nothing here allocates; sub-blocks are at most QP_KS_MAX_SUB elements. */
#ifndef QP_KQUANT_SEARCH_H
#define QP_KQUANT_SEARCH_H

#include <stdint.h>
#include <string.h>

#include "common/qp_half.h"

#define QP_KS_MAX_SUB 32   /* longest sub-block handled by the searches */
#define QP_KS_MAX_LEVELS 64

/* Nearest integer, ties to even (as ggml's nearest_int), for |v| < 2^22;
 * larger magnitudes saturate and NaN gives 0, so hostile input cannot reach
 * an out-of-range float-to-int conversion. */
static inline int qp_ks_nearest_int(float v)
{
    if (!(v < 4194303.0f && v > -4194303.0f))
        return v > 0 ? 4194303 : (v < 0 ? -4194303 : 0);
    float f = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &f, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int qp_ks_clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* f32 -> f16 bits, saturating at +-65504 (a scale that overflowed to inf
 * would turn a whole block into inf/NaN). */
static inline uint16_t qp_ks_f16_bits(float v)
{
    if (v > 65504.0f)
        v = 65504.0f;
    else if (v < -65504.0f)
        v = -65504.0f;
    return qp_f32_to_f16(v);
}

/* The value an f16 store of v reads back as. */
static inline float qp_ks_f16_round(float v) { return qp_f16_to_f32(qp_ks_f16_bits(v)); }

/* Block weights: imp (when given and not all zero) else ones, scaled so
 * the largest is 1 (the argmin is scale-free; this keeps sums of w*e^2 in
 * float range whatever the importance matrix holds). Negative, NaN or
 * infinite importances count as 0. Returns the sum of the weights. */
float qp_ks_block_weights(const float *imp, int n, float *w);

/* Largest magnitude a quantized block can represent (f16 scale 65504 times
 * 128 levels); inputs beyond it are clamped. */
#define QP_KS_XMAX (65504.0f * 128.0f)
/* Magnitudes below this quantize to an all-zero block. */
#define QP_KS_XMIN 1e-20f

/* The values to quantize: src itself when all are finite and within
 * +-QP_KS_XMAX (the normal case), else a copy in buf (n floats) with NaN
 * as 0 and the rest clamped, so that hostile input cannot drive the
 * searches into overflow or undefined conversions. */
const float *qp_ks_block_input(const float *src, int n, float *buf);

/* ---------------------------------------------------------------- grids */

typedef struct {
    int nlev;
    int uniform;    /* 1: lev[k] = lo + k */
    int lo;
    float lev[QP_KS_MAX_LEVELS];     /* ascending */
    float mid[QP_KS_MAX_LEVELS - 1]; /* mid[k] = (lev[k] + lev[k+1]) / 2 */
} qp_ks_grid;

void qp_ks_grid_uniform(qp_ks_grid *g, int lo, int hi);
void qp_ks_grid_table(qp_ks_grid *g, const int8_t *vals, int n);

/* Index of the level nearest to z. */
static inline int qp_ks_grid_index(const qp_ks_grid *g, float z)
{
    if (g->uniform)
        return qp_ks_clampi(qp_ks_nearest_int(z) - g->lo, 0, g->nlev - 1);
    int lo = 0, hi = g->nlev - 1; /* answer in [lo, hi] */
    while (lo < hi) {
        int m = (lo + hi) / 2;
        if (z > g->mid[m])
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

/* ------------------------------------------------------- error evaluators */

/* y_i = dl * lev[L_i] with L_i the level nearest x_i / dl (L_i = level
 * nearest 0 when dl == 0). Writes L, returns E. */
double qp_ks_sym_requant(int n, const float *x, const float *w, const qp_ks_grid *g, float dl,
                         uint8_t *L);

/* y_i = dl * q_i - ml with q_i = clamp(round((x_i + ml) / dl), 0, qmax)
 * (q = 0 when dl == 0). Writes L, returns E. */
double qp_ks_affine_requant(int n, const float *x, const float *w, int qmax, float dl, float ml,
                            uint8_t *L);

/* ------------------------------------------------------ one-level searches */

/* The real s (either sign) minimising sum w (x - s * lev[L])^2 with L the
 * nearest levels, over the scales whose largest |x| falls in the window
 * below; exact there up to float rounding. n <= QP_KS_MAX_SUB. Writes L,
 * returns s (0 when the block is all zero). */
float qp_ks_sym_scale(int n, const float *x, const float *w, const qp_ks_grid *g, uint8_t *L);

/* The same within a window of inverse scales: the largest |x| lands
 * between r_lo times the near end and r_hi times the far end of the grid
 * (qp_ks_sym_scale uses QP_KS_RLO..QP_KS_RHI). Optima outside it (a large
 * element clipped hard, or the range half used) are rare; narrower windows
 * are cheaper. */
#define QP_KS_RLO 0.5f
#define QP_KS_RHI 1.3f
float qp_ks_sym_scale_window(int n, const float *x, const float *w, const qp_ks_grid *g,
                             float r_lo, float r_hi, uint8_t *L);

/* x ~ s * q + m, q in 0..qmax, s >= 0. With nonpos_min the offset is kept
 * <= 0 (the K types store -m as an unsigned multiple of dmin). Writes L,
 * *m_out, returns s. n <= QP_KS_MAX_SUB. */
float qp_ks_affine_fit(int n, const float *x, const float *w, int qmax, int nonpos_min,
                       float *m_out, uint8_t *L);

/* ------------------------------------------------------ two-level searches */

/* y = d * ls_j * lev[L_i]: f16 d, integer ls_j in [lmin, lmax]. */
typedef struct {
    int nsub, sublen;
    const qp_ks_grid *grid;
    int lmin, lmax;
    float r_lo, r_hi; /* window of the sub-block scale sweep (qp_ks_sym_scale_window) */
} qp_ks_sym_spec;

/* x, w: nsub * sublen. Writes *d_bits (f16), ls[nsub], L[nsub*sublen];
 * returns E. */
double qp_ks_sym_superblock(const qp_ks_sym_spec *sp, const float *x, const float *w,
                            uint16_t *d_bits, int *ls, uint8_t *L);

/* y = (d * sc_j) * q_i - (dmin * m_j): f16 d and dmin >= 0, integers
 * sc_j in 0..scmax, m_j in 0..mmax, q_i in 0..qmax. */
typedef struct {
    int nsub, sublen;
    int qmax, scmax, mmax;
} qp_ks_affine_spec;

double qp_ks_affine_superblock(const qp_ks_affine_spec *sp, const float *x, const float *w,
                               uint16_t *d_bits, uint16_t *dmin_bits, int *sc, int *m,
                               uint8_t *L);

/* ------------------------------------------------------ one-scale blocks */

/* y = d * lev[L] with one f16 d (Q4_0, Q5_0, IQ4_NL): the exact real scale,
 * then the best of its f16 rounding and that value's two f16 neighbours.
 * Writes *d_bits and L, returns E. */
double qp_ks_sym_block_f16(int n, const float *x, const float *w, const qp_ks_grid *g,
                           uint16_t *d_bits, uint8_t *L);

/* y = d * q + m with f16 d and m (Q4_1, Q5_1); same f16 neighbour check
 * on both. Writes *d_bits, *m_bits and L, returns E. */
double qp_ks_affine_block_f16(int n, const float *x, const float *w, int qmax, uint16_t *d_bits,
                              uint16_t *m_bits, uint8_t *L);

#endif
