/* qp_half.h - scalar conversions between f32 and the 16-bit float formats.
 *
 * These follow ggml bit for bit: f32->f16 rounds to nearest even (what F16C's
 * _cvtss_sh and ggml's scalar fallback do); f32->bf16 rounds to nearest even
 * and turns NaN into a quiet NaN, as ggml_compute_fp32_to_bf16 does. */
#ifndef QP_HALF_H
#define QP_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t qp_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float qp_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float qp_bf16_to_f32(uint16_t h) { return qp_bits_f32((uint32_t)h << 16); }

static inline uint16_t qp_f32_to_bf16(float f)
{
    uint32_t u = qp_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: force quiet */
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

static inline float qp_f16_to_f32(uint16_t h)
{
    /* Exact: scale the 5-bit exponent via float arithmetic (the method of
     * Maratyszcza's FP16 library, which ggml's scalar path also uses). */
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    const uint32_t exp_offset = 0xE0u << 23;
    const float exp_scale = 0x1.0p-112f;
    const float normalized = qp_bits_f32((two_w >> 4) + exp_offset) * exp_scale;
    const uint32_t magic_mask = 126u << 23;
    const float magic_bias = 0.5f;
    const float denormalized = qp_bits_f32((two_w >> 17) | magic_mask) - magic_bias;
    const uint32_t denorm_cutoff = 1u << 27;
    const uint32_t result = sign | (two_w < denorm_cutoff ? qp_f32_bits(denormalized) : qp_f32_bits(normalized));
    return qp_bits_f32(result);
}

static inline uint16_t qp_f32_to_f16(float f)
{
    const float scale_to_inf = 0x1.0p+112f;
    const float scale_to_zero = 0x1.0p-110f;
    float base = (f < 0 ? -f : f) * scale_to_inf;
    base *= scale_to_zero;
    const uint32_t w = qp_f32_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u)
        bias = 0x71000000u;
    base = qp_bits_f32((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = qp_f32_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

#endif
