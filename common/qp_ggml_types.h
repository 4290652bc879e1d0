/* qp_ggml_types.h - the facts about ggml tensor types that file formats need:
 * numeric ids as stored in GGUF, names, and block geometry (elements per
 * block, bytes per block). This is the single table that size arithmetic
 * uses; quant/ adds kernels per type on top of it (quant/qtype.h). */
#ifndef QP_GGML_TYPES_H
#define QP_GGML_TYPES_H

#include <stdint.h>

/* Values are ggml's `enum ggml_type`, frozen by the GGUF format. */
typedef enum {
    QP_GGML_F32 = 0,
    QP_GGML_F16 = 1,
    QP_GGML_Q4_0 = 2,
    QP_GGML_Q4_1 = 3,
    QP_GGML_Q5_0 = 6,
    QP_GGML_Q5_1 = 7,
    QP_GGML_Q8_0 = 8,
    QP_GGML_Q8_1 = 9,
    QP_GGML_Q2_K = 10,
    QP_GGML_Q3_K = 11,
    QP_GGML_Q4_K = 12,
    QP_GGML_Q5_K = 13,
    QP_GGML_Q6_K = 14,
    QP_GGML_Q8_K = 15,
    QP_GGML_IQ2_XXS = 16,
    QP_GGML_IQ2_XS = 17,
    QP_GGML_IQ3_XXS = 18,
    QP_GGML_IQ1_S = 19,
    QP_GGML_IQ4_NL = 20,
    QP_GGML_IQ3_S = 21,
    QP_GGML_IQ2_S = 22,
    QP_GGML_IQ4_XS = 23,
    QP_GGML_I8 = 24,
    QP_GGML_I16 = 25,
    QP_GGML_I32 = 26,
    QP_GGML_I64 = 27,
    QP_GGML_F64 = 28,
    QP_GGML_IQ1_M = 29,
    QP_GGML_BF16 = 30,
    QP_GGML_TQ1_0 = 34,
    QP_GGML_TQ2_0 = 35,
    QP_GGML_MXFP4 = 39,
    QP_GGML_TYPE_LIMIT = 40 /* ids >= this are unknown */
} qp_ggml_type;

typedef struct {
    const char *name;     /* upper-case name, e.g. "Q4_K"; NULL for an unassigned id */
    uint32_t block_elems; /* elements per block (1 for plain types) */
    uint32_t block_bytes; /* bytes per block */
} qp_ggml_type_info;

/* Info for a type id, or NULL when the id is not a known type. */
const qp_ggml_type_info *qp_ggml_type_get(uint32_t type);

/* Upper-case display name ("Q4_K", "BF16"); "?" for unknown ids. */
const char *qp_ggml_type_name(uint32_t type);

/* Parse a name case-insensitively ("q4_k", "Q8_0", "bf16"); -1 if unknown. */
int qp_ggml_type_from_name(const char *name);

/* Bytes of a row of `n_elems` elements. Returns 0 (and sets *ok = 0) when the
 * type is unknown or n_elems is not a multiple of the block size or the
 * product overflows. */
uint64_t qp_ggml_row_bytes(uint32_t type, uint64_t n_elems, int *ok);

#endif
