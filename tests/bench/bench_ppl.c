/* bench_ppl.c - perplexity throughput of the reference runtime: tokens/s
 * through the model (n_ctx 512, the eval text's fixture token ids) at 1 and
 * 2 threads, best of a few runs, for the bf16 fixture models (read from
 * their HF directories, weights kept bf16) and llama.cpp's quantized files.
 *
 * Also shown: tokens per CPU-second of the process at 1 thread, which
 * stays meaningful on a machine shared with other work.
 *
 * usage: bench_ppl [chunks (default 8)] [repeats (default 3)] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime-lite/model.h"
#include "runtime-lite/ppl.h"

static int32_t *read_ids(const char *path, int64_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    int32_t *ids = malloc((size_t)size);
    if (ids && fread(ids, 1, (size_t)size, f) != (size_t)size) {
        free(ids);
        ids = NULL;
    }
    fclose(f);
    *n = size / 4;
    return ids;
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    const int64_t chunks = argc > 1 ? atoll(argv[1]) : 8;
    const int repeats = argc > 2 ? atoi(argv[2]) : 3;
    static const struct { const char *label, *rel; } MODELS[] = {
        {"qwen3-tiny bf16 (HF dir)", "models/qwen3-tiny"},
        {"qwen3-moe-tiny bf16 (HF dir)", "models/qwen3-moe-tiny"},
        {"qwen3-tiny Q4_K_M (llama.cpp)", "llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf"},
        {"qwen3-tiny Q2_K (llama.cpp)", "llama-cpp-quantized/qwen3-tiny-Q2_K.gguf"},
    };
    int64_t n_ids = 0;
    int32_t *ids = read_ids(QP_FIXTURES "/reference/tiny-tokenizer/eval.ids.i32", &n_ids);
    if (!ids) {
        fprintf(stderr, "bench_ppl: cannot read the fixture token ids\n");
        return 1;
    }
    printf("perplexity throughput, n_ctx 512, %lld chunks, best of %d (tokens/s through the model)\n\n",
           (long long)chunks, repeats);
    printf("%-32s %12s %12s %14s %10s\n", "model", "1 thread", "2 threads", "1 thr tok/CPU-s", "ppl");
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", QP_FIXTURES, MODELS[i].rel);
        qp_rt_model *m = NULL;
        qp_err err;
        if (qp_rt_model_open(path, &m, &err) != QP_OK) {
            char buf[2048];
            qp_err_format(&err, buf, sizeof buf);
            printf("%-32s %s\n", MODELS[i].label, buf);
            continue;
        }
        double best[2] = {0, 0}, ppl = 0, best_cpu = 0;
        for (int t = 1; t <= 2; t++)
            for (int r = 0; r < repeats; r++) {
                const double c0 = cpu_seconds();
                qp_ppl_job job = {.model = m, .tokens = ids, .n_tokens = n_ids, .n_ctx = 512,
                                  .max_chunks = chunks, .n_threads = t};
                qp_ppl_summary s;
                if (qp_ppl_run(&job, &s, &err) != QP_OK)
                    break;
                const double cpu = cpu_seconds() - c0;
                if (s.tokens_per_second > best[t - 1])
                    best[t - 1] = s.tokens_per_second;
                if (t == 1 && cpu > 0 && (double)(chunks * 512) / cpu > best_cpu)
                    best_cpu = (double)(chunks * 512) / cpu;
                ppl = s.stats.ppl.val;
            }
        printf("%-32s %12.0f %12.0f %14.0f %10.4f\n", MODELS[i].label, best[0], best[1], best_cpu, ppl);
        fflush(stdout);
        qp_rt_model_free(m);
    }
    free(ids);
    return 0;
}
