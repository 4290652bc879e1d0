/* bench_quant.c - quantization speed and error of every searched type.
 *
 * 1. Error on the ggml-vectors fixture tensors (the oracle of
 *    tests/quant/test_ggml_vectors.c): relative RMSE without importance
 *    (pure-*) and importance-weighted relative RMSE with the fixture
 *    importance matrix (imat-*), for the production quantizer (fast search,
 *    run-time kernels), the exhaustive reference search, the scalar twin of
 *    llama.cpp's own search (Q4_K/Q5_K/Q6_K, quant/ggml_like.c) and
 *    llama.cpp's figures from vectors.json.
 * 2. Speed on a synthetic heavy-tailed tensor (default 256 MB of f32, rows
 *    of 2048 = the Qwen3-30B-A3B expert input width): weights/s per thread
 *    at 1 and 2 threads (qp_parallel_for over rows), ns and TSC cycles per
 *    weight, with and without importance; the portable kernels, the
 *    exhaustive reference and the ggml-like twin on a slice; their relative
 *    RMSE on that slice; a check that 1 and 2 threads and AVX2/portable
 *    give the same bytes.
 *
 * usage: bench_quant [--mb MB] [--slice-mb MB] [--reps N (each time the best of N)]
 *                    [--types Q4_K,Q6_K,...] [--no-fixtures] [--no-speed] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include <cjson/cJSON.h>

#include "common/qp_cpu.h"
#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "format/imatrix.h"
#include "quant/qtype.h"
#include "quant/qtype_ref.h"

#define GV QP_FIXTURES "/ggml-vectors/"

static const char *const TYPES[] = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_XS", "IQ4_NL",
                                    "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"};
/* vectors.json tag of each type (the K presets quantize the test tensors
 * to their base type). */
static const char *const TAGS[] = {"Q2_K", "Q3_K_S", "Q4_K_S", "Q5_K_S", "Q6_K", "IQ4_XS", "IQ4_NL",
                                   "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"};
#define NTYPES (int)(sizeof TYPES / sizeof TYPES[0])

static const char *const TENSORS[2] = {"blk.0.ffn_down.weight", "blk.1.attn_q.weight"};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t ticks(void)
{
#if defined(__x86_64__)
    return __rdtsc();
#else
    return 0;
#endif
}

static void *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    void *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        ((char *)p)[n] = 0;
    *size = (size_t)n;
    return p;
}

/* sqrt(sum w (deq - src)^2 / sum w src^2) over rows of cols; w NULL = 1. */
static double rel_rmse(const float *src, const float *deq, int64_t rows, int64_t cols, const float *w)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            const double wj = w ? w[j] : 1.0, s = src[i * cols + j], d = deq[i * cols + j] - s;
            num += wj * d * d;
            den += wj * s * s;
        }
    return sqrt(num / den);
}

typedef struct {
    qp_quantize_row_fn fn;
    const float *src, *imp;
    uint8_t *dst;
    int64_t cols;
    uint64_t row_bytes;
} job;

static void run_rows(void *ctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    const job *j = ctx;
    for (int64_t r = begin; r < end; r++)
        j->fn(j->src + r * j->cols, j->dst + (uint64_t)r * j->row_bytes, j->cols, j->imp);
}

/* Quantize rows x cols with fn on nt threads; returns the CPU seconds of
 * all threads together (the machine may be shared: CPU time measures the
 * work, wall time the contention), *wall the wall seconds, *cyc the TSC
 * cycles of the CPU time at the measured TSC rate. */
static double quantize(qp_quantize_row_fn fn, const float *src, const float *imp, uint8_t *dst,
                       int64_t rows, int64_t cols, uint64_t rb, int nt, double *wall)
{
    job j = {fn, src, imp, dst, cols, rb};
    const double t0 = now(), c0 = cpu_now();
    qp_parallel_for(nt, rows, run_rows, &j);
    const double c = cpu_now() - c0;
    if (wall)
        *wall = now() - t0;
    return c;
}

/* quantize() best of reps (least CPU time; *wall of that run). */
static double quantize_best(int reps, qp_quantize_row_fn fn, const float *src, const float *imp, uint8_t *dst,
                            int64_t rows, int64_t cols, uint64_t rb, int nt, double *wall)
{
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double w;
        const double t = quantize(fn, src, imp, dst, rows, cols, rb, nt, &w);
        if (r == 0 || t < best) {
            best = t;
            if (wall)
                *wall = w;
        }
    }
    return best;
}

static void dequantize(const qp_qtype *q, const uint8_t *src, float *dst, int64_t rows, int64_t cols, uint64_t rb)
{
    for (int64_t r = 0; r < rows; r++)
        q->dequantize_row(src + (uint64_t)r * rb, dst + r * cols, cols);
}

static int want(const char *list, const char *t)
{
    if (!list)
        return 1;
    const size_t n = strlen(t);
    for (const char *p = list; (p = strstr(p, t)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* ------------------------------------------------------------ fixtures */

static int fixture_errors(const char *types)
{
    size_t size;
    char *json = read_all(GV "vectors.json", &size);
    qp_imatrix *im = NULL;
    qp_err err;
    if (!json || qp_imatrix_read(GV "imatrix-calib.gguf", &im, &err) != QP_OK) {
        fprintf(stderr, "bench_quant: cannot read the ggml-vectors fixtures\n");
        free(json);
        return 1;
    }
    cJSON *root = cJSON_Parse(json);
    free(json);
    cJSON *jt = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    float *src[2], *imp[2];
    int64_t rows[2], cols[2];
    for (int k = 0; k < 2; k++) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(jt, TENSORS[k]);
        rows[k] = cJSON_GetObjectItemCaseSensitive(t, "rows")->valueint;
        cols[k] = cJSON_GetObjectItemCaseSensitive(t, "row_len")->valueint;
        char path[512];
        snprintf(path, sizeof path, GV "%s.src.f32", TENSORS[k]);
        src[k] = read_all(path, &size);
        imp[k] = malloc(sizeof(float) * (size_t)cols[k]);
        const int64_t e = qp_imatrix_find(im, TENSORS[k]);
        if (!src[k] || e < 0 || !qp_imatrix_mean(im, e, 0, imp[k])) {
            fprintf(stderr, "bench_quant: fixture tensor %s incomplete\n", TENSORS[k]);
            return 1;
        }
    }
    printf("## Error on the ggml-vectors tensors (relative RMSE; imat: importance-weighted)\n\n");
    printf("| type | tensor | pure fast | pure exhaustive | pure ggml-like | pure ggml | imat fast | imat exhaustive | imat ggml |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    cJSON *jty = cJSON_GetObjectItemCaseSensitive(root, "types");
    int worse = 0;
    for (int ti = 0; ti < NTYPES; ti++) {
        if (!want(types, TYPES[ti]))
            continue;
        const uint32_t type = (uint32_t)qp_ggml_type_from_name(TYPES[ti]);
        const qp_qtype *q = qp_qtype_get(type);
        const qp_quantize_row_fn ref = qp_qtype_exhaustive_quantizer(type);
        const qp_quantize_row_fn gl = qp_qtype_ggml_like_quantizer(type);
        for (int k = 0; k < 2; k++) {
            double r[2][3]; /* [pure, imat][fast, ref, ggml] */
            double rgl = NAN;
            for (int mode = 0; mode < 2; mode++) {
                char tag[64];
                snprintf(tag, sizeof tag, "%s-%s", mode ? "imat" : "pure", TAGS[ti]);
                cJSON *jg = cJSON_GetObjectItemCaseSensitive(jty, tag);
                r[mode][2] = NAN;
                if (jg) {
                    cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(jg, "tensors"), TENSORS[k]);
                    r[mode][2] = cJSON_GetObjectItemCaseSensitive(x, mode ? "imatrix_weighted_rel_rmse" : "rel_rmse")->valuedouble;
                }
                const uint64_t rb = qp_qtype_row_bytes(type, cols[k]);
                uint8_t *buf = malloc(rb * (uint64_t)rows[k]);
                float *deq = malloc(sizeof(float) * (size_t)(rows[k] * cols[k]));
                for (int v = 0; v < 2; v++) {
                    quantize(v ? ref : q->quantize_row, src[k], mode ? imp[k] : NULL, buf, rows[k], cols[k], rb, 1, NULL);
                    dequantize(q, buf, deq, rows[k], cols[k], rb);
                    r[mode][v] = rel_rmse(src[k], deq, rows[k], cols[k], mode ? imp[k] : NULL);
                }
                worse += r[mode][0] > r[mode][2] * (1.0 + 1e-6);
                if (gl && mode == 0) {
                    quantize(gl, src[k], NULL, buf, rows[k], cols[k], rb, 1, NULL);
                    dequantize(q, buf, deq, rows[k], cols[k], rb);
                    rgl = rel_rmse(src[k], deq, rows[k], cols[k], NULL);
                }
                free(buf);
                free(deq);
            }
            char glb[32] = "-";
            if (!isnan(rgl))
                snprintf(glb, sizeof glb, "%.5f", rgl);
            char igb[32] = "-";
            if (!isnan(r[1][2]))
                snprintf(igb, sizeof igb, "%.5f", r[1][2]);
            printf("| %s | %s | %.5f | %.5f | %s | %.5f | %.5f | %.5f | %s |\n", TYPES[ti], TENSORS[k], r[0][0],
                   r[0][1], glb, r[0][2], r[1][0], r[1][1], igb);
        }
    }
    printf("\nfast search worse than ggml: %d cases\n\n", worse);
    cJSON_Delete(root);
    for (int k = 0; k < 2; k++) {
        free(src[k]);
        free(imp[k]);
    }
    qp_imatrix_free(im);
    return 0;
}

/* ------------------------------------------------------------ speed */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()); }

/* Heavy-tailed rows: Student-t with 4 degrees of freedom (normal over the
 * root of a chi-square), a per-row scale, and rare large outliers, as in
 * trained weight matrices. */
static void synth(float *x, int64_t rows, int64_t cols, float *imp)
{
    for (int64_t r = 0; r < rows; r++) {
        const double rs = 0.02 * exp(0.3 * nrand());
        for (int64_t j = 0; j < cols; j++) {
            double c = 0.0;
            for (int k = 0; k < 4; k++) {
                const double z = nrand();
                c += z * z;
            }
            double v = nrand() / sqrt(c / 4.0);
            if (urand() < 1e-3)
                v *= 8.0;
            x[r * cols + j] = (float)(rs * v);
        }
    }
    for (int64_t j = 0; j < cols; j++)
        imp[j] = (float)exp(1.5 * nrand());
}

static int speed(const char *types, double mb, double slice_mb, int reps)
{
    const int64_t cols = 2048;
    const int64_t rows = (int64_t)(mb * 1048576.0 / 4.0 / (double)cols);
    int64_t srows = (int64_t)(slice_mb * 1048576.0 / 4.0 / (double)cols);
    srows = srows < 1 ? 1 : (srows > rows ? rows : srows);
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    float *imp = malloc(sizeof(float) * (size_t)cols);
    float *deq = malloc(sizeof(float) * (size_t)(srows * cols));
    uint8_t *a = malloc((size_t)(rows * cols) * 2), *b = malloc((size_t)(rows * cols) * 2);
    if (!x || !imp || !deq || !a || !b) {
        fprintf(stderr, "bench_quant: out of memory\n");
        return 1;
    }
    synth(x, rows, cols, imp);
    const double t0 = now();
    const uint64_t c0 = ticks();
    while (now() - t0 < 0.2) {
    }
    const double ghz = (double)(ticks() - c0) / (now() - t0) / 1e9;
    const int avx2 = qp_cpu_get().avx2;
    printf("## Speed: synthetic heavy-tailed tensor, %lld x %lld f32 (%.0f MB); slice %lld rows\n\n",
           (long long)rows, (long long)cols, mb, (long long)srows);
    printf("kernels: %s; TSC %.2f GHz; M/s = 10^6 weights per CPU-second of each thread (process CPU time,\n"
           "so a loaded machine does not distort it); wall = 10^6 weights per wall second, all threads;\n"
           "ns/w and cyc/w (TSC cycles) per weight on one thread\n\n",
           avx2 ? "AVX2+FMA+F16C" : "portable", ghz);
    printf("| type | fast 1t M/s | fast 2t M/s/thread | 2t wall M/s | ns/w | cyc/w | imat 1t M/s | imat 2t M/s/thread | portable 1t M/s | exhaustive 1t M/s | speed-up | ggml-like 1t M/s | slice rel RMSE fast | exhaustive | ggml-like | same bytes | dequant M/s |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n");
    for (int ti = 0; ti < NTYPES; ti++) {
        if (!want(types, TYPES[ti]))
            continue;
        const uint32_t type = (uint32_t)qp_ggml_type_from_name(TYPES[ti]);
        const qp_qtype *q = qp_qtype_get(type), *qs = qp_qtype_get_scalar(type);
        const qp_quantize_row_fn ref = qp_qtype_exhaustive_quantizer(type);
        const uint64_t rb = qp_qtype_row_bytes(type, cols);
        const double nw = (double)(rows * cols), snw = (double)(srows * cols);
        /* every time the best of reps: the machine may be shared */
        double w1, w2;
        const double t1 = quantize_best(reps, q->quantize_row, x, NULL, a, rows, cols, rb, 1, &w1);
        const double t2 = quantize_best(reps, q->quantize_row, x, NULL, b, rows, cols, rb, 2, &w2);
        int same = memcmp(a, b, rb * (uint64_t)rows) == 0;
        const double ti1 = quantize_best(reps, q->quantize_row, x, imp, a, rows, cols, rb, 1, NULL);
        const double ti2 = quantize_best(reps, q->quantize_row, x, imp, b, rows, cols, rb, 2, NULL);
        same &= memcmp(a, b, rb * (uint64_t)rows) == 0;
        /* slice: portable twin (same bytes), exhaustive reference, errors */
        const double tp = quantize_best(reps, qs->quantize_row, x, NULL, b, srows, cols, rb, 1, NULL);
        quantize(q->quantize_row, x, NULL, a, srows, cols, rb, 1, NULL);
        same &= memcmp(a, b, rb * (uint64_t)srows) == 0;
        dequantize(q, a, deq, srows, cols, rb);
        const double ef = rel_rmse(x, deq, srows, cols, NULL);
        const double tr = quantize_best(reps, ref, x, NULL, b, srows, cols, rb, 1, NULL);
        dequantize(q, b, deq, srows, cols, rb);
        const double er = rel_rmse(x, deq, srows, cols, NULL);
        char glt[32] = "-", gle[32] = "-";
        const qp_quantize_row_fn gl = qp_qtype_ggml_like_quantizer(type);
        if (gl) {
            const double tg = quantize_best(reps, gl, x, NULL, b, srows, cols, rb, 1, NULL);
            dequantize(q, b, deq, srows, cols, rb);
            snprintf(glt, sizeof glt, "%.1f", snw / tg / 1e6);
            snprintf(gle, sizeof gle, "%.5f", rel_rmse(x, deq, srows, cols, NULL));
        }
        double td = cpu_now();
        for (int rep = 0; rep < 4; rep++)
            dequantize(q, a, deq, srows, cols, rb);
        td = (cpu_now() - td) / 4.0;
        printf("| %s | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.2f | %.0fx | %s | %.5f | %.5f | %s | %s | %.0f |\n", TYPES[ti],
               nw / t1 / 1e6, nw / t2 / 1e6, nw / w2 / 1e6, t1 / nw * 1e9, t1 * ghz * 1e9 / nw, nw / ti1 / 1e6,
               nw / ti2 / 1e6, snw / tp / 1e6, snw / tr / 1e6, (tr / snw) / (t1 / nw), glt, ef, er, gle, same ? "yes" : "NO",
               snw / td / 1e6);
        fflush(stdout);
    }
    printf("\n");
    free(x);
    free(imp);
    free(deq);
    free(a);
    free(b);
    return 0;
}

int main(int argc, char **argv)
{
    double mb = 256.0, slice = 4.0;
    int reps = 1;
    const char *types = NULL;
    int fixtures = 1, spd = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--mb") && i + 1 < argc)
            mb = atof(argv[++i]);
        else if (!strcmp(argv[i], "--slice-mb") && i + 1 < argc)
            slice = atof(argv[++i]);
        else if (!strcmp(argv[i], "--types") && i + 1 < argc)
            types = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-fixtures"))
            fixtures = 0;
        else if (!strcmp(argv[i], "--no-speed"))
            spd = 0;
        else {
            fprintf(stderr, "usage: bench_quant [--mb MB] [--slice-mb MB] [--reps N] [--types T,..] [--no-fixtures] [--no-speed]\n");
            return 2;
        }
    }
    if (fixtures && fixture_errors(types))
        return 1;
    if (spd && speed(types, mb, slice, reps < 1 ? 1 : reps))
        return 1;
    return 0;
}
