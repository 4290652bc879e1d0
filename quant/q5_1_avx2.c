/* q5_1_avx2.c - Q5_1 quantization with importance through the AVX2 kernels
 * of the fast search (quant/kquant_fast_avx2.c); without importance the
 * row is ggml's plain quantizer. Same bytes as quant/q5_1.c, which also
 * does the packing. */
#include "quant/quant_rows.h"

void qp_q5_1_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q5_1_quantize_rows(src, dst, n, imp, qp_kf_affine_block_f16_avx2);
}
