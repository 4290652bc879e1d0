/* matmul_avx2.c - AVX2/FMA/F16C twins of the matmul kernels (compiled with
 * -mavx2 -mfma -mf16c; reached only when qp_cpu_get().avx2). */
#include "runtime-lite/matmul.h"

#include <immintrin.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "common/qp_half.h"

/* m (1..6) tokens x 16 rows: 2m accumulators, 2 panel loads and m
 * broadcasts per k. Specialized per m by inlining with a constant, so the
 * accumulators live in registers; each output is the same FMA chain over k
 * for every m. */
static inline __attribute__((always_inline)) void tile_rows(const int M, int64_t K, const float *x, int64_t ldx,
                                                            const float *panel, int64_t ldp, float *y,
                                                            int64_t ldy)
{
    /* named accumulators, not arrays: GCC keeps these in registers */
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int64_t k = 0; k < K; k++) {
        const __m256 b0 = _mm256_loadu_ps(panel + ldp * k);
        const __m256 b1 = _mm256_loadu_ps(panel + ldp * k + 8);
#define QP_TILE_ROW(i)                                                   \
        if (M > i) {                                                     \
            const __m256 a = _mm256_broadcast_ss(x + i * ldx + k);       \
            c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);                   \
            c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);                   \
        }
        QP_TILE_ROW(0)
        QP_TILE_ROW(1)
        QP_TILE_ROW(2)
        QP_TILE_ROW(3)
        QP_TILE_ROW(4)
        QP_TILE_ROW(5)
#undef QP_TILE_ROW
    }
#define QP_TILE_STORE(i)                                                 \
    if (M > i) {                                                         \
        _mm256_storeu_ps(y + i * ldy, c##i##0);                          \
        _mm256_storeu_ps(y + i * ldy + 8, c##i##1);                      \
    }
    QP_TILE_STORE(0)
    QP_TILE_STORE(1)
    QP_TILE_STORE(2)
    QP_TILE_STORE(3)
    QP_TILE_STORE(4)
    QP_TILE_STORE(5)
#undef QP_TILE_STORE
}

void qp_rt_tile_avx2(int m, int64_t K, const float *x, int64_t ldx, const float *panel, int64_t ldp, float *y,
                     int64_t ldy)
{
    switch (m) {
    case 6: tile_rows(6, K, x, ldx, panel, ldp, y, ldy); break;
    case 5: tile_rows(5, K, x, ldx, panel, ldp, y, ldy); break;
    case 4: tile_rows(4, K, x, ldx, panel, ldp, y, ldy); break;
    case 3: tile_rows(3, K, x, ldx, panel, ldp, y, ldy); break;
    case 2: tile_rows(2, K, x, ldx, panel, ldp, y, ldy); break;
    case 1: tile_rows(1, K, x, ldx, panel, ldp, y, ldy); break;
    default: break;
    }
}

static inline __m256 load8(uint32_t type, const uint8_t *src, int64_t k)
{
    if (type == QP_GGML_F32)
        return _mm256_loadu_ps((const float *)(const void *)(src + 4 * k));
    const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(src + 2 * k));
    if (type == QP_GGML_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline float load1(uint32_t type, const uint8_t *src, int64_t k)
{
    float v;
    uint16_t h;
    if (type == QP_GGML_F32) {
        memcpy(&v, src + 4 * k, 4);
        return v;
    }
    memcpy(&h, src + 2 * k, 2);
    return type == QP_GGML_BF16 ? qp_bf16_to_f32(h) : qp_f16_to_f32(h);
}

/* Transpose 8 rows x 8 columns into 8 k-major vectors of 8 rows. */
static inline void transpose8(__m256 r[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

void qp_rt_pack_avx2(uint32_t type, const void *rows, uint64_t row_bytes, int n_rows, int64_t K, float *panel)
{
    const int64_t K8 = K / 8 * 8;
    for (int g = 0; g < 2; g++) {
        const uint8_t *src[8];
        for (int i = 0; i < 8; i++) {
            const int r = 8 * g + i;
            src[i] = r < n_rows ? (const uint8_t *)rows + (uint64_t)r * row_bytes : NULL;
        }
        for (int64_t k = 0; k < K8; k += 8) {
            __m256 v[8];
            for (int i = 0; i < 8; i++)
                v[i] = src[i] ? load8(type, src[i], k) : _mm256_setzero_ps();
            transpose8(v);
            for (int i = 0; i < 8; i++)
                _mm256_store_ps(panel + (k + i) * 16 + 8 * g, v[i]);
        }
        for (int64_t k = K8; k < K; k++)
            for (int i = 0; i < 8; i++)
                panel[k * 16 + 8 * g + i] = src[i] ? load1(type, src[i], k) : 0.0f;
    }
}
