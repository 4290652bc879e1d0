/* q4_0_avx2.c - Q4_0 quantization with importance through the AVX2 kernels
 * of the fast search (quant/kquant_fast_avx2.c); without importance the
 * row is ggml's plain quantizer. Same bytes as quant/q4_0.c, which also
 * does the packing. */
#include "quant/quant_rows.h"

void qp_q4_0_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q4_0_quantize_rows(src, dst, n, imp, qp_kf_sym_block_f16_avx2);
}
