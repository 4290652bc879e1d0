/* qtype.h - the trait table of block types: one entry per ggml type that
 * qpack can quantize, dequantize or multiply. Nothing outside this table
 * switches on the type.
 *
 * Every quantizer has one signature: `imp` is NULL for plain quantization or
 * points to n per-element importance weights (for a weight row these are the
 * per-column importances of the importance matrix); the objective is the
 * importance-weighted squared error of each block.
 *
 * Each type file (quant/q4_k.c, ...) defines `const qp_qtype qp_qtype_<t>`
 * holding its scalar (portable) kernels; its AVX2 twins live in
 * quant/<t>_avx2.c and are installed by qp_qtype_get() when the CPU has
 * AVX2+FMA+F16C (see common/qp_cpu.h). */
#ifndef QP_QTYPE_H
#define QP_QTYPE_H

#include <stdint.h>

#include "common/qp_ggml_types.h"

/* n is a multiple of block_elems for all three. */
typedef void (*qp_quantize_row_fn)(const float *src, void *dst, int64_t n, const float *imp);
typedef void (*qp_dequantize_row_fn)(const void *src, float *dst, int64_t n);
/* Dot product of a weight row (this type) with an activation row already
 * quantized to `vec_dot_type`. */
typedef float (*qp_vec_dot_fn)(int64_t n, const void *w_row, const void *act_row);
/* One weight row against 4 activation rows (act_rows + i * act_stride
 * bytes, i < 4): out[i] is bit-identical to vec_dot(n, w_row, row i) of the
 * same table entry, so grouping tokens by four never changes a result; it
 * is faster because the weight row is unpacked once for the four. */
typedef void (*qp_vec_dot_x4_fn)(int64_t n, const void *w_row, const void *act_rows, uint64_t act_stride,
                                 float *out);

typedef struct {
    uint32_t type;             /* qp_ggml_type */
    uint32_t block_elems;
    uint32_t block_bytes;
    qp_quantize_row_fn quantize_row;     /* NULL: cannot quantize to this type */
    qp_dequantize_row_fn dequantize_row; /* NULL: cannot read this type */
    uint32_t vec_dot_type;     /* activation type for vec_dot (Q8_K, Q8_0, F32...) */
    qp_vec_dot_fn vec_dot;     /* NULL: runtime must dequantize first */
    qp_vec_dot_x4_fn vec_dot_x4; /* NULL: call vec_dot per activation row */
} qp_qtype;

/* The kernels for `type` on this CPU (AVX2 when present and not forced off),
 * or NULL when the type has no entry. */
const qp_qtype *qp_qtype_get(uint32_t type);

/* The portable scalar kernels only (for twins tests and benchmarks). */
const qp_qtype *qp_qtype_get_scalar(uint32_t type);

/* Helpers built on the table. */
uint64_t qp_qtype_row_bytes(uint32_t type, int64_t n); /* 0 if invalid */

#endif
