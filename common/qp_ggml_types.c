/* qp_ggml_types.c - the one table of ggml type geometry (ids frozen by GGUF). */
#include "common/qp_ggml_types.h"

#include <stddef.h>
#include <strings.h>

static const qp_ggml_type_info TYPES[QP_GGML_TYPE_LIMIT] = {
    [QP_GGML_F32] = {"F32", 1, 4},
    [QP_GGML_F16] = {"F16", 1, 2},
    [QP_GGML_Q4_0] = {"Q4_0", 32, 18},
    [QP_GGML_Q4_1] = {"Q4_1", 32, 20},
    [QP_GGML_Q5_0] = {"Q5_0", 32, 22},
    [QP_GGML_Q5_1] = {"Q5_1", 32, 24},
    [QP_GGML_Q8_0] = {"Q8_0", 32, 34},
    [QP_GGML_Q8_1] = {"Q8_1", 32, 36},
    [QP_GGML_Q2_K] = {"Q2_K", 256, 84},
    [QP_GGML_Q3_K] = {"Q3_K", 256, 110},
    [QP_GGML_Q4_K] = {"Q4_K", 256, 144},
    [QP_GGML_Q5_K] = {"Q5_K", 256, 176},
    [QP_GGML_Q6_K] = {"Q6_K", 256, 210},
    [QP_GGML_Q8_K] = {"Q8_K", 256, 292},
    [QP_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [QP_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [QP_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [QP_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [QP_GGML_IQ4_NL] = {"IQ4_NL", 32, 18},
    [QP_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [QP_GGML_IQ2_S] = {"IQ2_S", 256, 82},
    [QP_GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [QP_GGML_I8] = {"I8", 1, 1},
    [QP_GGML_I16] = {"I16", 1, 2},
    [QP_GGML_I32] = {"I32", 1, 4},
    [QP_GGML_I64] = {"I64", 1, 8},
    [QP_GGML_F64] = {"F64", 1, 8},
    [QP_GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [QP_GGML_BF16] = {"BF16", 1, 2},
    [QP_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [QP_GGML_TQ2_0] = {"TQ2_0", 256, 66},
    [QP_GGML_MXFP4] = {"MXFP4", 32, 17},
};

const qp_ggml_type_info *qp_ggml_type_get(uint32_t type)
{
    if (type >= QP_GGML_TYPE_LIMIT || TYPES[type].name == NULL)
        return NULL;
    return &TYPES[type];
}

const char *qp_ggml_type_name(uint32_t type)
{
    const qp_ggml_type_info *t = qp_ggml_type_get(type);
    return t ? t->name : "?";
}

int qp_ggml_type_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < QP_GGML_TYPE_LIMIT; i++)
        if (TYPES[i].name && strcasecmp(TYPES[i].name, name) == 0)
            return i;
    return -1;
}

uint64_t qp_ggml_row_bytes(uint32_t type, uint64_t n_elems, int *ok)
{
    const qp_ggml_type_info *t = qp_ggml_type_get(type);
    uint64_t bytes;
    if (!t || n_elems % t->block_elems != 0 ||
        __builtin_mul_overflow(n_elems / t->block_elems, (uint64_t)t->block_bytes, &bytes)) {
        if (ok)
            *ok = 0;
        return 0;
    }
    if (ok)
        *ok = 1;
    return bytes;
}
