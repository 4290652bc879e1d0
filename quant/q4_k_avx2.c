/* q4_k_avx2.c - Q4_K quantization with the AVX2 kernels of the fast search
 * (quant/kquant_fast_avx2.c): the same bytes as the portable quantizer in
 * quant/q4_k.c, which also does the packing. */
#include "quant/quant_rows.h"

void qp_q4_k_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_q4_k_quantize_rows(src, dst, n, imp, qp_kf_affine_superblock_avx2);
}
