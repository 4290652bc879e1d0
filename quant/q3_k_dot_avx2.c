/* q3_k_dot_avx2.c - AVX2 Q3_K x Q8_K dot products (scalar twin in
 * quant/q3_k.c). Codes 0..7 (two bits from qs, the third from hmask) are
 * multiplied unsigned and the offset 4 is taken off through the
 * activation block sums, as in Q6_K; the sixteen 6-bit scales are
 * unpacked with 32-bit word operations. */
#include "quant/qdot_avx2.h"

#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"

/* The 16 signed scales (stored value - 32) as int8, in sub-block order:
 * sub-blocks 0..7 take the low nibbles of bytes 0..7, 8..15 the high
 * nibbles; the two high bits of scale s are bits 2*(s/4) of byte 8 + s%4. */
QD_INLINE __m128i q3_k_scales(const uint8_t *p)
{
    const uint32_t w0 = qd_u32(p), w1 = qd_u32(p + 4), w2 = qd_u32(p + 8);
    const uint32_t s0 = (w0 & 0x0f0f0f0fu) | ((w2 & 0x03030303u) << 4);
    const uint32_t s1 = (w1 & 0x0f0f0f0fu) | (((w2 >> 2) & 0x03030303u) << 4);
    const uint32_t s2 = ((w0 >> 4) & 0x0f0f0f0fu) | (((w2 >> 4) & 0x03030303u) << 4);
    const uint32_t s3 = ((w1 >> 4) & 0x0f0f0f0fu) | (((w2 >> 6) & 0x03030303u) << 4);
    return _mm_sub_epi8(_mm_set_epi32((int)s3, (int)s2, (int)s1, (int)s0), _mm_set1_epi8(32));
}

QD_INLINE void q3_k_rows(int64_t n, const void *w_row, const void *act, uint64_t stride, int nr, float *out)
{
    const qp_block_q3_k *x = w_row;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const __m128i sc8 = q3_k_scales(x[i].scales);
        const __m256i hm = qd_load(x[i].hmask);
        __m256i isum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int h = 0; h < 2; h++) {
            const __m256i S = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            const __m256i q = qd_load(x[i].qs + 32 * h);
            for (int k = 0; k < 4; k++) {
                const __m256i low = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m3);
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + k), one);
                const __m256i code = _mm256_or_si256(low, _mm256_slli_epi16(hb, 2));
                const __m256i s = _mm256_shuffle_epi8(S, qd_bcast16_ctrl(2 * k, 2 * k + 1));
                for (int r = 0; r < nr; r++) {
                    const int8_t *a = QD_ACT(qp_block_q8_k, act, stride, r, i)->qs + 128 * h + 32 * k;
                    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(code, qd_load(a)), s);
                    isum[r] = _mm256_add_epi32(isum[r], p);
                }
            }
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
        const float wd = qd_f16(x[i].d);
        for (int r = 0; r < nr; r++) {
            const qp_block_q8_k *y = QD_ACT(qp_block_q8_k, act, stride, r, i);
            const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(qd_bsums(y->bsums), sc16), 2);
            const __m256i t = _mm256_sub_epi32(isum[r], off);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * wd), _mm256_cvtepi32_ps(t), acc[r]);
        }
    }
    qd_store(acc, nr, out);
}

QD_DEFINE_DOTS(q3_k, q3_k_rows)
