/* iq4_xs_avx2.c - IQ4_XS quantization with the AVX2 kernels of the fast search
 * (quant/kquant_fast_avx2.c): the same bytes as the portable quantizer in
 * quant/iq4_xs.c, which also does the packing. */
#include "quant/quant_rows.h"

void qp_iq4_xs_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_iq4_xs_quantize_rows(src, dst, n, imp, qp_kf_sym_superblock_avx2);
}
