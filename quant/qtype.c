/* qtype.c - the trait table: scalar entries from each type file, AVX2
 * entries (quant/<type>_avx2.c) chosen at run time by CPU features. */
#include "quant/qtype.h"
#include "quant/qtype_internal.h"

#include "common/qp_cpu.h"

#include <pthread.h>

static const qp_qtype *const SCALAR[QP_GGML_TYPE_LIMIT] = {
    [QP_GGML_F32] = &qp_qtype_f32,
    [QP_GGML_F16] = &qp_qtype_f16,
    [QP_GGML_BF16] = &qp_qtype_bf16,
    [QP_GGML_Q4_0] = &qp_qtype_q4_0,
    [QP_GGML_Q4_1] = &qp_qtype_q4_1,
    [QP_GGML_Q5_0] = &qp_qtype_q5_0,
    [QP_GGML_Q5_1] = &qp_qtype_q5_1,
    [QP_GGML_Q8_0] = &qp_qtype_q8_0,
    [QP_GGML_Q2_K] = &qp_qtype_q2_k,
    [QP_GGML_Q3_K] = &qp_qtype_q3_k,
    [QP_GGML_Q4_K] = &qp_qtype_q4_k,
    [QP_GGML_Q5_K] = &qp_qtype_q5_k,
    [QP_GGML_Q6_K] = &qp_qtype_q6_k,
    [QP_GGML_Q8_K] = &qp_qtype_q8_k,
    [QP_GGML_IQ4_NL] = &qp_qtype_iq4_nl,
    [QP_GGML_IQ4_XS] = &qp_qtype_iq4_xs,
};

static qp_qtype g_avx2[QP_GGML_TYPE_LIMIT];
static pthread_once_t g_avx2_once = PTHREAD_ONCE_INIT;

/* Start from the scalar entry and let each type's AVX2 file override what it
 * has; a type without AVX2 kernels keeps its scalar ones. */
static void build_avx2_table(void)
{
    for (int i = 0; i < QP_GGML_TYPE_LIMIT; i++)
        if (SCALAR[i])
            g_avx2[i] = *SCALAR[i];
    qp_qtype_install_avx2(g_avx2);
}

const qp_qtype *qp_qtype_get_scalar(uint32_t type)
{
    return type < QP_GGML_TYPE_LIMIT ? SCALAR[type] : NULL;
}

const qp_qtype *qp_qtype_get(uint32_t type)
{
    if (type >= QP_GGML_TYPE_LIMIT || !SCALAR[type])
        return NULL;
    if (!qp_cpu_get().avx2)
        return SCALAR[type];
    pthread_once(&g_avx2_once, build_avx2_table);
    return &g_avx2[type];
}

uint64_t qp_qtype_row_bytes(uint32_t type, int64_t n)
{
    int ok;
    if (n < 0)
        return 0;
    uint64_t b = qp_ggml_row_bytes(type, (uint64_t)n, &ok);
    return ok ? b : 0;
}
