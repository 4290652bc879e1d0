/* bench_dot.c - time of one row dot product per weight type: the scalar
 * vec_dot, the AVX2 vec_dot, and the AVX2 vec_dot_x4 (per activation row),
 * for rows of 4096 (and 256, the short rows of a tiny model, where call
 * overhead shows), plus the activation quantizers. GFLOP/s counts 2 n
 * flops per dot. Times are this thread's CPU time (so other processes on
 * a shared machine do not count), the best of several repeats.
 *
 * usage: bench_dot [row_len ...] */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/qp_cpu.h"
#include "common/qp_ggml_types.h"
#include "quant/qtype.h"

static const uint32_t TYPES[] = {QP_GGML_Q8_0, QP_GGML_Q4_0, QP_GGML_Q4_1, QP_GGML_Q5_0, QP_GGML_Q5_1,
                                 QP_GGML_IQ4_NL, QP_GGML_Q2_K, QP_GGML_Q3_K, QP_GGML_Q4_K, QP_GGML_Q5_K,
                                 QP_GGML_Q6_K, QP_GGML_IQ4_XS};

#define NW 64 /* weight rows cycled through (stay in cache, as in a matmul panel) */
#define NA 4  /* activation rows */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t g_rng = 0x1234567u;
static float frand(void)
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    double u = ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
    return (float)((u - 0.5) * (u < 0.01 || u > 0.99 ? 20.0 : 2.0)); /* rare large values */
}

static volatile float g_sink;

typedef struct {
    const qp_qtype *q;
    const uint8_t *w, *a;
    uint64_t rb, arb;
    int64_t n;
} bench_case;

/* ns per row dot: `mode` 0 vec_dot, 1 vec_dot_x4 (per row). */
static double time_dots(const bench_case *c, int mode, long iters)
{
    double best = 1e30;
    for (int rep = 0; rep < 15; rep++) {
        float acc = 0.0f, out[NA];
        const double t0 = now_ns();
        for (long it = 0; it < iters; it++) {
            const uint8_t *w = c->w + c->rb * (uint64_t)(it % NW);
            if (mode == 0) {
                for (int j = 0; j < NA; j++)
                    acc += c->q->vec_dot(c->n, w, c->a + c->arb * (uint64_t)j);
            } else {
                c->q->vec_dot_x4(c->n, w, c->a, c->arb, out);
                acc += out[0] + out[3];
            }
        }
        const double t = (now_ns() - t0) / (double)(iters * NA);
        g_sink = acc;
        if (t < best)
            best = t;
    }
    return best;
}

static long iters_for(int64_t n, int scalar)
{
    long it = (long)(1e6 / (double)n) * (scalar ? 1 : 8);
    return it < 16 ? 16 : it;
}

static void bench_len(int64_t n)
{
    printf("\nrow length %lld: ns per row dot (GFLOP/s)\n", (long long)n);
    printf("%-8s %18s %18s %18s %8s %8s\n", "type", "scalar", "avx2", "avx2 x4", "avx2/sc", "x4/sc");
    float *x = malloc(sizeof(float) * (size_t)n * NW);
    for (int64_t i = 0; i < n * NW; i++)
        x[i] = frand() * 0.05f;
    for (size_t ti = 0; ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
        const qp_qtype *sq = qp_qtype_get_scalar(TYPES[ti]);
        qp_cpu_force_scalar(0);
        const qp_qtype *vq = qp_qtype_get(TYPES[ti]);
        if (!sq || !sq->vec_dot || n % sq->block_elems != 0)
            continue;
        const uint64_t rb = qp_qtype_row_bytes(TYPES[ti], n), arb = qp_qtype_row_bytes(sq->vec_dot_type, n);
        uint8_t *w = malloc(rb * NW), *a = malloc(arb * NA);
        for (int r = 0; r < NW; r++)
            sq->quantize_row(x + (size_t)r * (size_t)n, w + rb * (uint64_t)r, n, NULL);
        const qp_qtype *aq = qp_qtype_get_scalar(sq->vec_dot_type);
        for (int r = 0; r < NA; r++)
            aq->quantize_row(x + (size_t)(r + 7) * (size_t)n, a + arb * (uint64_t)r, n, NULL);
        bench_case sc = {sq, w, a, rb, arb, n}, vc = {vq, w, a, rb, arb, n};
        const double ts = time_dots(&sc, 0, iters_for(n, 1));
        const double tv = vq != sq ? time_dots(&vc, 0, iters_for(n, 0)) : NAN;
        const double t4 = vq != sq && vq->vec_dot_x4 ? time_dots(&vc, 1, iters_for(n, 0)) : NAN;
        const double fl = 2.0 * (double)n;
        printf("%-8s %9.1f (%6.2f) %9.1f (%6.2f) %9.1f (%6.2f) %7.1fx %7.1fx\n", qp_ggml_type_name(TYPES[ti]), ts,
               fl / ts, tv, fl / tv, t4, fl / t4, ts / tv, ts / t4);
        free(w);
        free(a);
    }
    /* activation quantizers: ns per row */
    printf("%-8s %18s %18s\n", "quantize", "scalar", "avx2");
    const uint32_t act[] = {QP_GGML_Q8_0, QP_GGML_Q8_K};
    for (int k = 0; k < 2; k++) {
        const qp_qtype *sq = qp_qtype_get_scalar(act[k]), *vq = qp_qtype_get(act[k]);
        uint8_t *b = malloc(qp_qtype_row_bytes(act[k], n));
        double best[2] = {1e30, 1e30};
        const long iters = iters_for(n, 0);
        for (int m = 0; m < 2; m++)
            for (int rep = 0; rep < 15; rep++) {
                const qp_qtype *q = m ? vq : sq;
                const double t0 = now_ns();
                for (long it = 0; it < iters; it++)
                    q->quantize_row(x + (size_t)(it % NW) * (size_t)n, b, n, NULL);
                const double t = (now_ns() - t0) / (double)iters;
                if (t < best[m])
                    best[m] = t;
            }
        printf("%-8s %18.1f %18.1f %7.1fx\n", qp_ggml_type_name(act[k]), best[0], best[1], best[0] / best[1]);
        free(b);
    }
    free(x);
}

int main(int argc, char **argv)
{
    if (!qp_cpu_detect().avx2)
        printf("CPU lacks AVX2: the avx2 columns repeat the scalar kernels\n");
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            const long long n = atoll(argv[i]);
            if (n > 0 && n % 256 == 0)
                bench_len(n);
            else
                fprintf(stderr, "bench_dot: row length %s is not a positive multiple of 256\n", argv[i]);
        }
        return 0;
    }
    bench_len(4096);
    bench_len(256);
    return 0;
}
