/* q8_act_avx2.c - AVX2 twins of the Q8_0 and Q8_K quantizers (scalar in
 * quant/q8_0.c and quant/q8_k.c), the activation quantization of every
 * quantized matmul. Both give the scalar bytes exactly: the same float
 * operations per element (one multiply, then the scalar's rounding rule),
 * maxima found with max (order-free), and NaN/inf handled as the scalar
 * code does. Q8_0 with importance (weights, not activations) defers to the
 * scalar search. */
#include "quant/qdot_avx2.h"

#include <math.h>

#include "quant/kquant_search.h"
#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"
#include "quant/qtype.h"

static inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

static inline float hmax_ps(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* NaN lanes -> 0 (what the scalar rounding helpers give for NaN). */
static inline __m256 nan_to_zero(__m256 v) { return _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); }

/* 4 x 8 int32 (elements 0..31 in order) -> 32 int8 in order; values must
 * already be within int8 range. */
static inline __m256i pack_i32_to_i8(__m256i c0, __m256i c1, __m256i c2, __m256i c3)
{
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(c0, c1), _mm256_packs_epi32(c2, c3));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* ------------------------------------------------------------------ Q8_0 */

/* roundf (halves away from zero) of finite or infinite v, exact: the
 * truncation plus one step toward v's sign when the dropped fraction is at
 * least one half (v - trunc(v) is exact in binary floating point). */
static inline __m256 round_half_away(__m256 v)
{
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = abs_ps(_mm256_sub_ps(v, t));
    const __m256 step = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step));
}

/* q8_0.c's plain block: the input sanitized as qp_ks_block_input does (a
 * no-op for finite values within +-QP_KS_XMAX), d = amax / 127 stored as
 * f16, codes round_i8(x / d) = clamp(roundf, -127, 127) with NaN -> 0. */
static void q8_0_block_avx2(const float *src, qp_block_q8_0 *b)
{
    const __m256 lim = _mm256_set1_ps(QP_KS_XMAX), nlim = _mm256_set1_ps(-QP_KS_XMAX);
    __m256 x[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
        x[k] = _mm256_min_ps(_mm256_max_ps(nan_to_zero(_mm256_loadu_ps(src + 8 * k)), nlim), lim);
        amax = _mm256_max_ps(amax, abs_ps(x[k]));
    }
    const float d = hmax_ps(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b->d = qp_ks_f16_bits(d);
    const __m256 vid = _mm256_set1_ps(id);
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    __m256i c[4];
    for (int k = 0; k < 4; k++) {
        const __m256 v = round_half_away(nan_to_zero(_mm256_mul_ps(x[k], vid)));
        c[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
    }
    _mm256_storeu_si256((__m256i *)(void *)b->qs, pack_i32_to_i8(c[0], c[1], c[2], c[3]));
}

void qp_quantize_row_q8_0_avx2(const float *src, void *dst, int64_t n, const float *imp)
{
    if (imp) {
        qp_qtype_get_scalar(QP_GGML_Q8_0)->quantize_row(src, dst, n, imp);
        return;
    }
    qp_block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QP_QK; i++)
        q8_0_block_avx2(src + i * QP_QK, &b[i]);
}

/* ------------------------------------------------------------------ Q8_K */

/* Sums of the 16 int32 lanes of a and of b, ... : out[j] = total of v[j]
 * for four vectors, as int32 lanes 0..3. */
static inline __m128i hsum4_epi32(__m256i v0, __m256i v1, __m256i v2, __m256i v3)
{
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v0, v1), _mm256_hadd_epi32(v2, v3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

/* q8_k.c's block: the first element of largest magnitude (NaN ignored)
 * maps to -127; an all-zero, NaN-only or infinite block is stored zero. */
static void q8_k_block_avx2(const float *x, qp_block_q8_k *b)
{
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < QP_QK_K; k += 8) /* max_ps returns its second operand for NaN */
        amax = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + k)), amax);
    const float m = hmax_ps(amax);
    if (!(m > 0.0f) || !isfinite(m)) {
        memset(b, 0, sizeof *b);
        return;
    }
    float max = 0.0f;
    const __m256 vm = _mm256_set1_ps(m);
    for (int k = 0; k < QP_QK_K; k += 8) {
        const int hits = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(x + k)), vm, _CMP_EQ_OQ));
        if (hits) {
            max = x[k + __builtin_ctz((unsigned)hits)];
            break;
        }
    }
    const float iscale = -127.0f / max;
    const __m256 vis = _mm256_set1_ps(iscale);
    /* clamped before the conversion: iscale overflows to inf for a
     * subnormal max, and the scalar code saturates infinities */
    const __m256 hi = _mm256_set1_ps(127.0f), lo = _mm256_set1_ps(-127.0f);
    __m128i sums[4];
    for (int g = 0; g < QP_QK_K / 64; g++) { /* 64 elements = 4 block sums */
        __m256i c[8];
        for (int k = 0; k < 8; k++) {
            const __m256 v = nan_to_zero(_mm256_mul_ps(_mm256_loadu_ps(x + 64 * g + 8 * k), vis));
            c[k] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
        }
        _mm256_storeu_si256((__m256i *)(void *)(b->qs + 64 * g), pack_i32_to_i8(c[0], c[1], c[2], c[3]));
        _mm256_storeu_si256((__m256i *)(void *)(b->qs + 64 * g + 32), pack_i32_to_i8(c[4], c[5], c[6], c[7]));
        sums[g] = hsum4_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]),
                              _mm256_add_epi32(c[4], c[5]), _mm256_add_epi32(c[6], c[7]));
    }
    _mm_storeu_si128((__m128i *)(void *)b->bsums, _mm_packs_epi32(sums[0], sums[1]));
    _mm_storeu_si128((__m128i *)(void *)(b->bsums + 8), _mm_packs_epi32(sums[2], sums[3]));
    b->d = 1.0f / iscale;
}

void qp_quantize_row_q8_k_avx2(const float *src, void *dst, int64_t n, const float *imp)
{
    (void)imp;
    qp_block_q8_k *b = dst;
    for (int64_t i = 0; i < n / QP_QK_K; i++)
        q8_k_block_avx2(src + i * QP_QK_K, &b[i]);
}
