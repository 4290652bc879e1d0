/* iq4_xs_dot_avx2.c - AVX2 IQ4_XS x Q8_K dot products (scalar twin in
 * quant/iq4_xs.c). A 32-byte load of qs holds sub-blocks 2j (low lane)
 * and 2j+1 (high lane), low nibbles first; after the table lookup two
 * lane permutes put each sub-block's 32 values in element order, so the
 * activations load straight. Values are signed (|v| <= 127): |v| times a
 * with v's sign. */
#include "quant/qdot_avx2.h"

#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"

/* The 8 signed scales (stored value - 32) as int16: low nibbles from the
 * 4 bytes of scales_l, 2-bit high parts from scales_h, spread to one byte
 * per sub-block with shift-and-mask steps. */
QD_INLINE __m128i iq4_xs_scales(const qp_block_iq4_xs *b)
{
    uint64_t lo = qd_u32(b->scales_l);
    lo = (lo & 0xFFFFu) | ((lo & 0xFFFF0000u) << 16);
    lo = (lo | (lo << 8)) & 0x00FF00FF00FF00FFull;
    lo = (lo | (lo << 4)) & 0x0F0F0F0F0F0F0F0Full;
    uint64_t hi = b->scales_h;
    hi = (hi & 0xFFu) | ((hi & 0xFF00u) << 24);
    hi = (hi | (hi << 12)) & 0x000F000F000F000Full;
    hi = (hi | (hi << 6)) & 0x0303030303030303ull;
    const __m128i bytes = _mm_cvtsi64_si128((long long)(lo | (hi << 4)));
    return _mm_sub_epi16(_mm_cvtepu8_epi16(bytes), _mm_set1_epi16(32));
}

QD_INLINE void iq4_xs_rows(int64_t n, const void *w_row, const void *act, uint64_t stride, int nr, float *out)
{
    const qp_block_iq4_xs *x = w_row;
    const __m256i table =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)qp_iq4_values));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QP_QK_K; i++) {
        const __m256i sc = _mm256_broadcastsi128_si256(iq4_xs_scales(&x[i]));
        __m256i isum[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                           _mm256_setzero_si256()};
        for (int j = 0; j < 4; j++) {
            const __m256i q = qd_load(x[i].qs + 32 * j);
            const __m256i vlo = _mm256_shuffle_epi8(table, _mm256_and_si256(q, m4));
            const __m256i vhi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
            const __m256i w0 = _mm256_permute2x128_si256(vlo, vhi, 0x20); /* sub-block 2j */
            const __m256i w1 = _mm256_permute2x128_si256(vlo, vhi, 0x31); /* sub-block 2j+1 */
            const __m256i w0abs = _mm256_abs_epi8(w0), w1abs = _mm256_abs_epi8(w1);
            const __m256i s0 = _mm256_shuffle_epi8(sc, qd_bcast16_ctrl(2 * j, 2 * j));
            const __m256i s1 = _mm256_shuffle_epi8(sc, qd_bcast16_ctrl(2 * j + 1, 2 * j + 1));
            for (int r = 0; r < nr; r++) {
                const int8_t *a = QD_ACT(qp_block_q8_k, act, stride, r, i)->qs + 64 * j;
                const __m256i p0 =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(w0abs, _mm256_sign_epi8(qd_load(a), w0)), s0);
                const __m256i p1 =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(w1abs, _mm256_sign_epi8(qd_load(a + 32), w1)), s1);
                isum[r] = _mm256_add_epi32(isum[r], _mm256_add_epi32(p0, p1));
            }
        }
        const float wd = qd_f16(x[i].d);
        for (int r = 0; r < nr; r++) {
            const qp_block_q8_k *y = QD_ACT(qp_block_q8_k, act, stride, r, i);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * wd), _mm256_cvtepi32_ps(isum[r]), acc[r]);
        }
    }
    qd_store(acc, nr, out);
}

QD_DEFINE_DOTS(iq4_xs, iq4_xs_rows)
