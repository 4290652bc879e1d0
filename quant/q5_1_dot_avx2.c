/* q5_1_dot_avx2.c - AVX2 Q5_1 x Q8_0 dot products (scalar twin in
 * quant/q5_1.c): 5-bit codes (nibble | fifth bit << 4) as unsigned
 * weights, d * sum(q a) + m * sum(a) as for Q4_1. */
#include "quant/qdot_avx2.h"

#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"

QD_INLINE void q5_1_rows(int64_t n, const void *w_row, const void *act, uint64_t stride, int nr, float *out)
{
    const qp_block_q5_1 *x = w_row;
    const __m256i ones = _mm256_set1_epi8(1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const __m256i high = qd_bits_to_bytes(qd_u32(x[i].qh));
        const __m256i w = _mm256_or_si256(qd_nibbles16(x[i].qs), _mm256_and_si256(high, _mm256_set1_epi8(0x10)));
        const float wd = qd_f16(x[i].d), wm = qd_f16(x[i].m);
        for (int r = 0; r < nr; r++) {
            const qp_block_q8_0 *y = QD_ACT(qp_block_q8_0, act, stride, r, i);
            const __m256i a = qd_load(y->qs);
            const float ad = qd_f16(y->d);
            const __m256i p = qd_dot_u8(w, a), s = qd_dot_u8(ones, a);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(wd * ad), _mm256_cvtepi32_ps(p), acc[r]);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(wm * ad), _mm256_cvtepi32_ps(s), acc[r]);
        }
    }
    qd_store(acc, nr, out);
}

QD_DEFINE_DOTS(q5_1, q5_1_rows)
