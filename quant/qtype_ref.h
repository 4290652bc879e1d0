/* qtype_ref.h - the exhaustive reference quantizers (quant/kquant_search.h's
 * searches: slower, kept to measure the production searches against in
 * tests and tests/bench/bench_quant.c). */
#ifndef QP_QTYPE_REF_H
#define QP_QTYPE_REF_H

#include "quant/qtype.h"

/* The exhaustive quantizer of `type`, or the production one for types
 * whose quantizer has no separate search (F32, Q8_0, ...); NULL when the
 * type cannot be quantized. */
qp_quantize_row_fn qp_qtype_exhaustive_quantizer(uint32_t type);

/* A scalar twin of llama.cpp's own search without importance (Q4_K, Q5_K,
 * Q6_K; quant/ggml_like.c), to measure against on the same machine; NULL
 * for other types. Ignores imp. */
qp_quantize_row_fn qp_qtype_ggml_like_quantizer(uint32_t type);

#endif
