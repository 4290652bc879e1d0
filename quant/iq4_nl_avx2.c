/* iq4_nl_avx2.c - IQ4_NL quantization with the AVX2 kernels of the fast search
 * (quant/kquant_fast_avx2.c): the same bytes as the portable quantizer in
 * quant/iq4_nl.c, which also does the packing. */
#include "quant/quant_rows.h"

void qp_iq4_nl_quantize_row_avx2(const float *src, void *dst, int64_t n, const float *imp)
{
    qp_iq4_nl_quantize_rows(src, dst, n, imp, qp_kf_sym_blocks_f16_avx2);
}
