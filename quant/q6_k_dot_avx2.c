/* q6_k_dot_avx2.c - AVX2 Q6_K x Q8_K dot products (scalar twin in
 * quant/q6_k.c). Codes 0..63 are multiplied unsigned (maddubs) and the
 * offset 32 is taken off once per block through the activation block
 * sums: sum_s sc_s * (dot_s - 32 * bsum_s). A 32-byte register of codes
 * spans two 16-element sub-blocks, one per 128-bit lane, so its scale
 * register holds one scale per lane. */
#include "quant/qdot_avx2.h"

#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"

QD_INLINE void q6_k_rows(int64_t n, const void *w_row, const void *act, uint64_t stride, int nr, float *out)
{
    const qp_block_q6_k *x = w_row;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)x[i].scales);
        __m256i isum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int h = 0; h < 2; h++) {
            /* int16 scales of sub-blocks 8h .. 8h+7 in both lanes */
            const __m256i S = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            const __m256i ql0 = qd_load(x[i].ql + 64 * h), ql1 = qd_load(x[i].ql + 64 * h + 32);
            const __m256i qh = qd_load(x[i].qh + 32 * h);
            __m256i code[4];
            code[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m2));
            code[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m2));
            code[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, m2));
            code[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                                      _mm256_and_si256(_mm256_srli_epi16(qh, 2), m2));
            for (int k = 0; k < 4; k++) {
                const __m256i s = _mm256_shuffle_epi8(S, qd_bcast16_ctrl(2 * k, 2 * k + 1));
                for (int r = 0; r < nr; r++) {
                    const int8_t *a = QD_ACT(qp_block_q8_k, act, stride, r, i)->qs + 128 * h + 32 * k;
                    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(code[k], qd_load(a)), s);
                    isum[r] = _mm256_add_epi32(isum[r], p);
                }
            }
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const float wd = qd_f16(x[i].d);
        for (int r = 0; r < nr; r++) {
            const qp_block_q8_k *y = QD_ACT(qp_block_q8_k, act, stride, r, i);
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(qd_bsums(y->bsums), sc16), 5);
            const __m256i t = _mm256_sub_epi32(isum[r], off);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * wd), _mm256_cvtepi32_ps(t), acc[r]);
        }
    }
    qd_store(acc, nr, out);
}

QD_DEFINE_DOTS(q6_k, q6_k_rows)
