/* bf16.c - BF16 rows (top 16 bits of an f32, ggml's round-to-nearest-even
 * with quiet NaN); vec_dot takes f32 activations. */
#include "quant/qtype_internal.h"

#include "common/qp_half.h"

static void quantize_row_bf16(const float *src, void *dst, int64_t n, const float *imp)
{
    (void)imp; /* nearest-even is already the least-error choice per element */
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++)
        h[i] = qp_f32_to_bf16(src[i]);
}

static void dequantize_row_bf16(const void *src, float *dst, int64_t n)
{
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++)
        dst[i] = qp_bf16_to_f32(h[i]);
}

static float vec_dot_bf16(int64_t n, const void *w_row, const void *act_row)
{
    const uint16_t *w = w_row;
    const float *a = act_row;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)qp_bf16_to_f32(w[i]) * (double)a[i];
    return (float)sum;
}

const qp_qtype qp_qtype_bf16 = {
    .type = QP_GGML_BF16,
    .block_elems = 1,
    .block_bytes = 2,
    .quantize_row = quantize_row_bf16,
    .dequantize_row = dequantize_row_bf16,
    .vec_dot_type = QP_GGML_F32,
    .vec_dot = vec_dot_bf16,
};
