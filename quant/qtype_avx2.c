/* qtype_avx2.c - installs the AVX2 kernels that exist into the dispatch
 * table. Each type's AVX2 file exports its functions through
 * quant/qtype_avx2.h; add a line here when one is written. */
#include "quant/qtype_internal.h"

void qp_qtype_install_avx2(qp_qtype *table)
{
    (void)table;
}
