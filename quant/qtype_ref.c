/* qtype_ref.c - the exhaustive reference quantizers (see qtype_ref.h). */
#include "quant/qtype_ref.h"

#include "quant/quant_rows.h"

static void ref_q2_k(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q2_k_quantize_rows(s, d, n, imp, qp_ks_affine_superblock);
}
static void ref_q4_k(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q4_k_quantize_rows(s, d, n, imp, qp_ks_affine_superblock);
}
static void ref_q5_k(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q5_k_quantize_rows(s, d, n, imp, qp_ks_affine_superblock);
}
static void ref_q3_k(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q3_k_quantize_rows(s, d, n, imp, qp_ks_sym_superblock);
}
static void ref_q6_k(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q6_k_quantize_rows(s, d, n, imp, qp_ks_sym_superblock);
}
static void ref_iq4_xs(const float *s, void *d, int64_t n, const float *imp)
{
    qp_iq4_xs_quantize_rows(s, d, n, imp, qp_ks_sym_superblock);
}
static void ref_blocks_f16(int nblk, int n, const float *x, const float *w, const qp_ks_grid *g,
                           uint16_t *d_bits, uint8_t *L)
{
    for (int j = 0; j < nblk; j++)
        qp_ks_sym_block_f16(n, x + j * n, w + j * n, g, d_bits + j, L + j * n);
}
static void ref_iq4_nl(const float *s, void *d, int64_t n, const float *imp)
{
    qp_iq4_nl_quantize_rows(s, d, n, imp, ref_blocks_f16);
}

static void ref_q4_0(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q4_0_quantize_rows(s, d, n, imp, qp_ks_sym_block_f16);
}
static void ref_q5_0(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q5_0_quantize_rows(s, d, n, imp, qp_ks_sym_block_f16);
}

static void ref_q4_1(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q4_1_quantize_rows(s, d, n, imp, qp_ks_affine_block_f16);
}
static void ref_q5_1(const float *s, void *d, int64_t n, const float *imp)
{
    qp_q5_1_quantize_rows(s, d, n, imp, qp_ks_affine_block_f16);
}

qp_quantize_row_fn qp_qtype_exhaustive_quantizer(uint32_t type)
{
    switch (type) {
    case QP_GGML_Q2_K: return ref_q2_k;
    case QP_GGML_Q3_K: return ref_q3_k;
    case QP_GGML_Q4_K: return ref_q4_k;
    case QP_GGML_Q5_K: return ref_q5_k;
    case QP_GGML_Q6_K: return ref_q6_k;
    case QP_GGML_IQ4_XS: return ref_iq4_xs;
    case QP_GGML_IQ4_NL: return ref_iq4_nl;
    case QP_GGML_Q4_0: return ref_q4_0;
    case QP_GGML_Q5_0: return ref_q5_0;
    case QP_GGML_Q4_1: return ref_q4_1;
    case QP_GGML_Q5_1: return ref_q5_1;
    default: {
        const qp_qtype *q = qp_qtype_get_scalar(type);
        return q ? q->quantize_row : NULL;
    }
    }
}
