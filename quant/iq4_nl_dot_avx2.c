/* iq4_nl_dot_avx2.c - AVX2 IQ4_NL x Q8_0 dot products (scalar twin in
 * quant/iq4_nl.c): nibbles looked up in the 16 levels (pshufb), then as
 * signed 8-bit weights. */
#include "quant/qdot_avx2.h"

#include "quant/qblocks.h"
#include "quant/qdot_avx2_inl.h"

QD_INLINE void iq4_nl_rows(int64_t n, const void *w_row, const void *act, uint64_t stride, int nr, float *out)
{
    const qp_block_iq4_nl *x = w_row;
    const __m256i table =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)qp_iq4_values));
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t i = 0; i < n / QP_QK; i++) {
        const __m256i w = _mm256_shuffle_epi8(table, qd_nibbles16(x[i].qs));
        const __m256i wabs = _mm256_abs_epi8(w);
        const float wd = qd_f16(x[i].d);
        for (int r = 0; r < nr; r++) {
            const qp_block_q8_0 *y = QD_ACT(qp_block_q8_0, act, stride, r, i);
            const __m256i p = qd_dot_s8_abs(wabs, w, qd_load(y->qs));
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(wd * qd_f16(y->d)), _mm256_cvtepi32_ps(p), acc[r]);
        }
    }
    qd_store(acc, nr, out);
}

QD_DEFINE_DOTS(iq4_nl, iq4_nl_rows)
