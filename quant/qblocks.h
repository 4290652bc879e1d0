/* qblocks.h - the byte layouts of ggml's quantized blocks, as stored in GGUF.
 *
 * All structs live in this one header (rather than in each type file)
 * because the vec_dot of one type reads the activation blocks of another
 * (Q8_0, Q8_K) and the AVX2 twins (quant/<t>_avx2.c) need the same layouts.
 * Every struct is packed by construction (only uint8_t/uint16_t/int8_t/
 * int16_t/float members placed at naturally aligned offsets) and its size is
 * pinned by a _Static_assert to ggml's block size.
 *
 * Multi-byte fields are little-endian on disk; qpack targets little-endian
 * hosts only (x86-64, aarch64), so they are read in place. `uint16_t d` etc.
 * hold IEEE half floats (common/qp_half.h). */
#ifndef QP_QBLOCKS_H
#define QP_QBLOCKS_H

#include <stdint.h>

#define QP_QK 32    /* elements per block of the legacy types and IQ4_NL */
#define QP_QK_K 256 /* elements per super-block of the K types and IQ4_XS */

/* Q4_0: y = d * (q - 8), q in 0..15.
 * qs[j] low nibble = element j, high nibble = element j + 16. */
typedef struct {
    uint16_t d;
    uint8_t qs[QP_QK / 2];
} qp_block_q4_0;
_Static_assert(sizeof(qp_block_q4_0) == 18, "Q4_0 block is 18 bytes");

/* Q4_1: y = d * q + m, q in 0..15; nibbles as Q4_0. */
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qs[QP_QK / 2];
} qp_block_q4_1;
_Static_assert(sizeof(qp_block_q4_1) == 20, "Q4_1 block is 20 bytes");

/* Q5_0: y = d * (q - 16), q in 0..31. Low 4 bits as Q4_0; the fifth bit of
 * element j is bit j of qh read as a little-endian uint32. */
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QP_QK / 2];
} qp_block_q5_0;
_Static_assert(sizeof(qp_block_q5_0) == 22, "Q5_0 block is 22 bytes");

/* Q5_1: y = d * q + m, q in 0..31; bits as Q5_0. */
typedef struct {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[QP_QK / 2];
} qp_block_q5_1;
_Static_assert(sizeof(qp_block_q5_1) == 24, "Q5_1 block is 24 bytes");

/* Q8_0: y = d * q, q in -128..127 (element j = qs[j]). */
typedef struct {
    uint16_t d;
    int8_t qs[QP_QK];
} qp_block_q8_0;
_Static_assert(sizeof(qp_block_q8_0) == 34, "Q8_0 block is 34 bytes");

/* IQ4_NL: y = d * kvalues[q], q in 0..15 (non-uniform table, see
 * qp_iq4_values); nibbles as Q4_0. */
typedef struct {
    uint16_t d;
    uint8_t qs[QP_QK / 2];
} qp_block_iq4_nl;
_Static_assert(sizeof(qp_block_iq4_nl) == 18, "IQ4_NL block is 18 bytes");

/* Q2_K: 16 sub-blocks of 16. scales[s] low nibble = scale, high = min;
 * y = d*scale*q - dmin*min, q in 0..3. Element e = 128*h + 32*k + l
 * (h 0..1, k 0..3, l 0..31) is bits 2k..2k+1 of qs[32*h + l] and uses
 * sub-block 8*h + 2*k + l/16. */
typedef struct {
    uint8_t scales[QP_QK_K / 16];
    uint8_t qs[QP_QK_K / 4];
    uint16_t d;
    uint16_t dmin;
} qp_block_q2_k;
_Static_assert(sizeof(qp_block_q2_k) == 84, "Q2_K block is 84 bytes");

/* Q3_K: 16 sub-blocks of 16 with 6-bit signed scales (stored +32);
 * y = d*(scale-32)*(q-4), q in 0..7. The low 2 bits of q are placed as in
 * Q2_K; bit 2 of element e = 128*h + 32*k + l is bit 4*h + k of hmask[l].
 * Scale s: low 4 bits in scales[s % 8] (low nibble for s < 8, high nibble
 * for s >= 8), high 2 bits are bits 2*(s/4)..+1 of scales[8 + s % 4]. */
typedef struct {
    uint8_t hmask[QP_QK_K / 8];
    uint8_t qs[QP_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} qp_block_q3_k;
_Static_assert(sizeof(qp_block_q3_k) == 110, "Q3_K block is 110 bytes");

/* Q4_K: 8 sub-blocks of 32 with 6-bit scale and min (packing: see
 * qp_k4_scale_min); y = d*scale*q - dmin*min, q in 0..15. Element
 * e = 64*c + l (c 0..3, l 0..63): qs[32*c + l%32], low nibble for l < 32,
 * high nibble otherwise; sub-block 2*c + l/32. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[QP_QK_K / 2];
} qp_block_q4_k;
_Static_assert(sizeof(qp_block_q4_k) == 144, "Q4_K block is 144 bytes");

/* Q5_K: as Q4_K with q in 0..31; the fifth bit of element e = 64*c + l is
 * bit 2*c + l/32 of qh[l % 32]. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[QP_QK_K / 8];
    uint8_t qs[QP_QK_K / 2];
} qp_block_q5_k;
_Static_assert(sizeof(qp_block_q5_k) == 176, "Q5_K block is 176 bytes");

/* Q6_K: 16 sub-blocks of 16 with int8 scales; y = d*scale*(q-32), q 0..63.
 * Element e = 128*h + 32*k + l (h 0..1, k 0..3, l 0..31): low 4 bits are
 * ql[64*h + 32*(k&1) + l], low nibble for k < 2, high nibble for k >= 2;
 * high 2 bits are bits 2k..2k+1 of qh[32*h + l]; sub-block 8*h + 2*k + l/16. */
typedef struct {
    uint8_t ql[QP_QK_K / 2];
    uint8_t qh[QP_QK_K / 4];
    int8_t scales[QP_QK_K / 16];
    uint16_t d;
} qp_block_q6_k;
_Static_assert(sizeof(qp_block_q6_k) == 210, "Q6_K block is 210 bytes");

/* IQ4_XS: 8 sub-blocks of 32 with 6-bit signed scales (stored +32);
 * y = d*(scale-32)*kvalues[q]. Scale s: low 4 bits are nibble s%2 of
 * scales_l[s/2], high 2 bits are bits 2s..2s+1 of scales_h. Sub-block s is
 * qs[16*s .. 16*s+15], nibbles as Q4_0 within the sub-block. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[QP_QK_K / 64];
    uint8_t qs[QP_QK_K / 2];
} qp_block_iq4_xs;
_Static_assert(sizeof(qp_block_iq4_xs) == 136, "IQ4_XS block is 136 bytes");

/* Q8_K (activations only): f32 scale, y = d * q, and bsums[s] = the sum of
 * qs[16*s .. 16*s+15] so that the min terms of Q2_K/Q4_K/Q5_K and the
 * offset of Q3_K/Q6_K cost one multiply per sub-block. */
typedef struct {
    float d;
    int8_t qs[QP_QK_K];
    int16_t bsums[QP_QK_K / 16];
} qp_block_q8_k;
_Static_assert(sizeof(qp_block_q8_k) == 292, "Q8_K block is 292 bytes");

/* The 16 levels of IQ4_NL / IQ4_XS (ascending). */
extern const int8_t qp_iq4_values[16];

/* Q4_K/Q5_K scale and min of sub-block j (0..7) from the 12 packed bytes:
 * j < 4: 6 low bits of q[j] (scale) and q[j+4] (min); j >= 4: low/high
 * nibble of q[j+4] plus the top 2 bits of q[j-4] (scale) / q[j] (min). */
static inline void qp_k4_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Inverse of qp_k4_scale_min: sc[8], m[8] in 0..63 -> 12 bytes. */
static inline void qp_k4_pack_scales(const int *sc, const int *m, uint8_t *q)
{
    /* Unsigned arithmetic: the fields are 6-bit codes; anything outside
     * 0..63 is masked, never shifted as a negative int. */
    for (int j = 0; j < 4; j++) {
        unsigned s_lo = (unsigned)sc[j] & 63u, s_hi = (unsigned)sc[j + 4] & 63u;
        unsigned m_lo = (unsigned)m[j] & 63u, m_hi = (unsigned)m[j + 4] & 63u;
        q[j] = (uint8_t)(s_lo | ((s_hi >> 4) << 6));
        q[j + 4] = (uint8_t)(m_lo | ((m_hi >> 4) << 6));
        q[j + 8] = (uint8_t)((s_hi & 0xFu) | ((m_hi & 0xFu) << 4));
    }
}

/* Q3_K scale s (0..15) as stored (0..63, subtract 32 for the signed value). */
static inline int qp_k3_scale(int s, const uint8_t *scales)
{
    int lo = s < 8 ? (scales[s] & 0xF) : (scales[s - 8] >> 4);
    int hi = (scales[8 + (s & 3)] >> (2 * (s >> 2))) & 3;
    return lo | (hi << 4);
}

/* IQ4_XS scale s (0..7) as stored (0..63). */
static inline int qp_iq4xs_scale(int s, const qp_block_iq4_xs *b)
{
    return ((b->scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b->scales_h >> (2 * s)) & 3) << 4);
}

#endif
