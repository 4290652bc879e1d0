/* q2_k_dot_avx2.c - AVX2 Q2_K x Q8_K dot products (scalar twin in
 * quant/q2_k.c). Each 32-byte load of qs holds four registers of 2-bit
 * codes (shifts by 0, 2, 4, 6), each spanning two 16-element sub-blocks
 * (one per lane); the 4-bit mins meet the activation block sums in one
 * madd. */
#include "quant/qdot_avx2.h"

#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"

QD_INLINE void q2_k_rows(int64_t n, const void *w_row, const void *act, uint64_t stride, int nr, float *out)
{
    const qp_block_q2_k *x = w_row;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0x0F);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const __m128i sb = _mm_loadu_si128((const __m128i *)(const void *)x[i].scales);
        const __m128i sc8 = _mm_and_si128(sb, m4), mn8 = _mm_and_si128(_mm_srli_epi16(sb, 4), m4);
        __m256i isum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int h = 0; h < 2; h++) {
            const __m256i S = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            const __m256i q = qd_load(x[i].qs + 32 * h);
            for (int k = 0; k < 4; k++) {
                const __m256i code = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m3);
                const __m256i s = _mm256_shuffle_epi8(S, qd_bcast16_ctrl(2 * k, 2 * k + 1));
                for (int r = 0; r < nr; r++) {
                    const int8_t *a = QD_ACT(qp_block_q8_k, act, stride, r, i)->qs + 128 * h + 32 * k;
                    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(code, qd_load(a)), s);
                    isum[r] = _mm256_add_epi32(isum[r], p);
                }
            }
        }
        const __m256i mins = _mm256_cvtepu8_epi16(mn8);
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

QD_DEFINE_DOTS(q2_k, q2_k_rows)
