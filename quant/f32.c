/* f32.c - F32 rows: quantize/dequantize are copies; vec_dot takes f32
 * activations. */
#include "quant/qtype_internal.h"

#include <string.h>

static void quantize_row_f32(const float *src, void *dst, int64_t n, const float *imp)
{
    (void)imp; /* exact: nothing to weigh */
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void dequantize_row_f32(const void *src, float *dst, int64_t n)
{
    memcpy(dst, src, (size_t)n * sizeof(float));
}

/* Double accumulation: the scalar path is the accuracy reference the SIMD
 * twins are compared against. */
static float vec_dot_f32(int64_t n, const void *w_row, const void *act_row)
{
    const float *w = w_row;
    const float *a = act_row;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)w[i] * (double)a[i];
    return (float)sum;
}

const qp_qtype qp_qtype_f32 = {
    .type = QP_GGML_F32,
    .block_elems = 1,
    .block_bytes = 4,
    .quantize_row = quantize_row_f32,
    .dequantize_row = dequantize_row_f32,
    .vec_dot_type = QP_GGML_F32,
    .vec_dot = vec_dot_f32,
};
