/* qdot_avx2_inl.h - small AVX2 pieces shared by the dot-product kernels
 * (quant/<t>_dot_avx2.c). Include only from files compiled with
 * -mavx2 -mfma -mf16c (the *_avx2.c files).
 *
 * Every kernel is written once as an always-inline body taking the number
 * of activation rows (1 or 4) as a compile-time constant; vec_dot and
 * vec_dot_x4 are its two instances. A row's float operations are the same
 * in both instances (one f32 accumulator per row, one fused multiply-add
 * per block, the same final reduction tree), so vec_dot_x4's results are
 * bit-identical to vec_dot's: the runtime may group tokens by four without
 * a token's values depending on its neighbours. */
#ifndef QP_QDOT_AVX2_INL_H
#define QP_QDOT_AVX2_INL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define QD_INLINE static inline __attribute__((always_inline))

/* The f32 value of an IEEE half (F16C; exact, as qp_f16_to_f32). */
QD_INLINE float qd_f16(uint16_t h) { return _cvtsh_ss(h); }

QD_INLINE __m256i qd_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

QD_INLINE uint32_t qd_u32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Lane sums of adjacent int16 pairs -> 8 int32. */
QD_INLINE __m256i qd_pairs(__m256i v) { return _mm256_madd_epi16(v, _mm256_set1_epi16(1)); }

/* 32 unsigned codes (0..127) times 32 int8 activations, summed in fours
 * -> 8 int32. Pair sums stay within int16 for codes < 128. */
QD_INLINE __m256i qd_dot_u8(__m256i w, __m256i a) { return qd_pairs(_mm256_maddubs_epi16(w, a)); }

/* 32 signed weights times 32 int8 activations in -127..127, summed in
 * fours -> 8 int32: |w| as unsigned times a with w's sign (exact for
 * w = -128 too, since |a| <= 127 keeps pair sums within int16). */
QD_INLINE __m256i qd_dot_s8(__m256i w, __m256i a)
{
    return qd_pairs(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w)));
}

/* Same, with |w| precomputed once for several activation rows. */
QD_INLINE __m256i qd_dot_s8_abs(__m256i wabs, __m256i w, __m256i a)
{
    return qd_pairs(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(a, w)));
}

/* 16 bytes of nibbles -> 32 codes: low nibbles (elements 0..15) in the low
 * lane, high nibbles (elements 16..31) in the high lane. */
QD_INLINE __m256i qd_nibbles16(const uint8_t *qs)
{
    const __m128i q = _mm_loadu_si128((const __m128i *)(const void *)qs);
    const __m256i both = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

/* Bit j of the 32-bit word `bits` -> byte j all-ones (set) or zero. */
QD_INLINE __m256i qd_bits_to_bytes(uint32_t bits)
{
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                               _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll,
                                                                 0x0101010101010101ll, 0));
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, sel), sel);
}

/* Horizontal sum of 8 floats in a fixed tree: (v[i] + v[i+4]) for i < 4,
 * then (s0 + s2) + (s1 + s3). */
QD_INLINE float qd_hsum(__m256 v)
{
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

/* qd_hsum of four vectors at once, element for element the same tree. */
QD_INLINE void qd_hsum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3, float *out)
{
    __m128 s0 = _mm_add_ps(_mm256_castps256_ps128(v0), _mm256_extractf128_ps(v0, 1));
    __m128 s1 = _mm_add_ps(_mm256_castps256_ps128(v1), _mm256_extractf128_ps(v1, 1));
    __m128 s2 = _mm_add_ps(_mm256_castps256_ps128(v2), _mm256_extractf128_ps(v2, 1));
    __m128 s3 = _mm_add_ps(_mm256_castps256_ps128(v3), _mm256_extractf128_ps(v3, 1));
    _MM_TRANSPOSE4_PS(s0, s1, s2, s3); /* s_k now holds element k of each */
    _mm_storeu_ps(out, _mm_add_ps(_mm_add_ps(s0, s2), _mm_add_ps(s1, s3)));
}

/* The row results of an nr-row kernel (nr is 1 or 4). */
QD_INLINE void qd_store(const __m256 *acc, int nr, float *out)
{
    if (nr == 1)
        out[0] = qd_hsum(acc[0]);
    else
        qd_hsum4(acc[0], acc[1], acc[2], acc[3], out);
}

/* Q4_K/Q5_K: the 8 scales (bytes 0..7) and 8 mins (bytes 8..15) of a
 * super-block, unpacked from the 12 bytes of qp_k4_scale_min's packing:
 * sub-blocks 0..3 keep 6 bits of bytes 0..3 / 4..7; 4..7 take a nibble of
 * bytes 8..11 plus the top 2 bits of bytes 0..3 / 4..7. */
QD_INLINE __m128i qd_k4_scales_mins(const uint8_t *p)
{
    const uint32_t w0 = qd_u32(p), w1 = qd_u32(p + 4), w2 = qd_u32(p + 8);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, m_lo = w1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
    const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
    return _mm_set_epi32((int)m_hi, (int)m_lo, (int)sc_hi, (int)sc_lo);
}

/* Shuffle controls picking int16 element j into every slot of a lane. */
QD_INLINE __m256i qd_bcast16_ctrl(int lo, int hi)
{
    const int a = 2 * lo, b = 2 * hi;
    return _mm256_setr_epi8((char)a, (char)(a + 1), (char)a, (char)(a + 1), (char)a, (char)(a + 1), (char)a,
                            (char)(a + 1), (char)a, (char)(a + 1), (char)a, (char)(a + 1), (char)a, (char)(a + 1),
                            (char)a, (char)(a + 1), (char)b, (char)(b + 1), (char)b, (char)(b + 1), (char)b,
                            (char)(b + 1), (char)b, (char)(b + 1), (char)b, (char)(b + 1), (char)b, (char)(b + 1),
                            (char)b, (char)(b + 1), (char)b, (char)(b + 1));
}

/* Q8_K activations: the 16 per-16 sums as int16. */
QD_INLINE __m256i qd_bsums(const int16_t *bsums) { return qd_load(bsums); }

/* The two entry points of a kernel body `rows(n, w, act, stride, nr, out)`:
 * vec_dot (one activation row) and vec_dot_x4 (four rows `stride` bytes
 * apart). */
#define QD_DEFINE_DOTS(t, rows)                                                                   \
    float qp_vec_dot_##t##_avx2(int64_t n, const void *w_row, const void *act_row)                \
    {                                                                                             \
        float r;                                                                                  \
        rows(n, w_row, act_row, 0, 1, &r);                                                        \
        return r;                                                                                 \
    }                                                                                             \
    void qp_vec_dot_x4_##t##_avx2(int64_t n, const void *w_row, const void *act_rows,             \
                                  uint64_t act_stride, float *out)                                \
    {                                                                                             \
        rows(n, w_row, act_rows, act_stride, 4, out);                                             \
    }

/* Activation block i of row r (rows `stride` bytes apart). */
#define QD_ACT(type, act, stride, r, i) \
    ((const type *)(const void *)((const uint8_t *)(act) + (uint64_t)(r) * (stride)) + (i))

#endif
