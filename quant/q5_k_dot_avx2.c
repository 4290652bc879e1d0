/* q5_k_dot_avx2.c - AVX2 Q5_K x Q8_K dot products (scalar twin in
 * quant/q5_k.c): as Q4_K, with the fifth bit of sub-block s taken from
 * bit s of qh (shifted down two bits per 64 elements). */
#include "quant/qdot_avx2.h"

#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"

#define QD_MINS_PAIRS _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)

QD_INLINE void q5_k_rows(int64_t n, const void *w_row, const void *act, uint64_t stride, int nr, float *out)
{
    const qp_block_q5_k *x = w_row;
    const __m256i m4 = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const __m128i sm = qd_k4_scales_mins(x[i].scales);
        const __m256i sc16 = _mm256_cvtepu8_epi16(sm);
        const __m256i sc = _mm256_permute2x128_si256(sc16, sc16, 0x00);
        __m256i h = qd_load(x[i].qh);
        __m256i isum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int c = 0; c < 4; c++) {
            const __m256i q = qd_load(x[i].qs + 32 * c);
            /* bit 0 of h -> bit 4 (sub-block 2c), bit 1 -> bit 4 (2c + 1) */
            const __m256i lo =
                _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), bit4));
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                               _mm256_and_si256(_mm256_slli_epi16(h, 3), bit4));
            h = _mm256_srli_epi16(h, 2);
            const __m256i s0 = _mm256_shuffle_epi8(sc, qd_bcast16_ctrl(2 * c, 2 * c));
            const __m256i s1 = _mm256_shuffle_epi8(sc, qd_bcast16_ctrl(2 * c + 1, 2 * c + 1));
            for (int r = 0; r < nr; r++) {
                const int8_t *a = QD_ACT(qp_block_q8_k, act, stride, r, i)->qs + 64 * c;
                const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, qd_load(a)), s0);
                const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, qd_load(a + 32)), s1);
                isum[r] = _mm256_add_epi32(isum[r], _mm256_add_epi32(p0, p1));
            }
        }
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(sm, QD_MINS_PAIRS));
        const float wd = qd_f16(x[i].d), wm = qd_f16(x[i].dmin);
        for (int r = 0; r < nr; r++) {
            const qp_block_q8_k *y = QD_ACT(qp_block_q8_k, act, stride, r, i);
            const __m256i msum = _mm256_madd_epi16(qd_bsums(y->bsums), mins);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * wd), _mm256_cvtepi32_ps(isum[r]), acc[r]);
            acc[r] = _mm256_fnmadd_ps(_mm256_set1_ps(y->d * wm), _mm256_cvtepi32_ps(msum), acc[r]);
        }
    }
    qd_store(acc, nr, out);
}

QD_DEFINE_DOTS(q5_k, q5_k_rows)
