/* gen_checkpoint.c - write a synthetic Qwen3-MoE / Qwen3 checkpoint of a real
 * model's shape, in the Hub layout, for conversion benchmarks at scale.
 *
 *   gen_checkpoint --preset qwen3-235b-a22b --layers 2 --out DIR
 *                  [--experts N] [--vocab N] [--shard-size 5G] [--dtype bf16|fp8]
 *                  [--seed S] [-t THREADS]
 *
 * Output: model-0000i-of-0000N.safetensors shards of about --shard-size
 * bytes, model.safetensors.index.json, config.json (the preset with the
 * overrides) and the fixture tokenizer of models/qwen3-tiny (8192 tokens:
 * the converter pads the vocabulary to vocab_size with [PAD<id>] entries).
 * With --dtype fp8 every projection matrix (not embeddings, lm_head, norms,
 * routers) is F8_E4M3 with F32 `weight_scale_inv` per 128x128 block, as in
 * the Hub's Qwen3-*-FP8 checkpoints.
 *
 * Weights are deterministic functions of (seed, tensor name, row, column):
 * the same bytes for any thread count or chunking. Values are heavy-tailed
 * (an approximately normal variate times a rare large factor; kurtosis ~13
 * with the per-row scales and 1 row in 256 four times larger), so quantizers
 * see outliers as in trained weights. Memory is constant: each work item
 * is at most a few MB of rows, generated and pwritten by worker threads.
 * Not a test; tests/bench/bench_convert.sh drives it. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/qp_threads.h"

typedef struct {
    const char *name;
    int hidden, layers, heads, kv_heads, head_dim, experts, top_k, moe_inter, inter, vocab, max_pos;
} preset;

/* Shapes of the Hub configs of these models. */
static const preset PRESETS[] = {
    {"qwen3-30b-a3b", 2048, 48, 32, 4, 128, 128, 8, 768, 6144, 151936, 40960},
    {"qwen3-235b-a22b", 4096, 94, 64, 4, 128, 128, 8, 1536, 12288, 151936, 40960},
};

enum { DT_BF16, DT_F8, DT_F32 };
enum { K_MATRIX, K_NORM };

#define FP8_BLOCK 128
#define CHUNK_BYTES ((int64_t)4 << 20) /* one bf16 work item */

typedef struct {
    char name[112];
    int kind, dtype;
    int64_t rows, cols;    /* a vector has rows = 1 */
    int n_dims;
    uint64_t nbytes;
    int shard;
    uint64_t offset;       /* within the shard's data region */
    uint32_t seed;
    float std;
    int scale;             /* index of this FP8 weight's scale tensor, else -1 */
} tspec;

typedef struct {
    tspec *t;
    int n, cap;
} tlist;

typedef struct {
    int tensor;
    int64_t row0, rows;
} work_item;

/* ------------------------------------------------------------ value model */

/* Murmur3's 32-bit finalizer: a bijective mix, cheap in SIMD lanes. */
static inline uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

static uint32_t name_seed(const char *s, uint32_t seed)
{
    uint32_t h = 2166136261u ^ seed; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return mix32(h);
}

/* One row of a tensor as f32. The inner loop has no branches or calls, so
 * the compiler vectorizes it (an AVX2 clone is picked at load time where
 * the CPU has it): two hashes give four 16-bit uniforms; three
 * sum to a bell shape (Irwin-Hall, scaled to unit variance), the fourth
 * gives a factor 1 + 3u^8 that is large for ~13% of elements. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define QP_GEN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define QP_GEN_CLONES
#endif

QP_GEN_CLONES static void gen_row(const tspec *t, int64_t row, float *out)
{
    uint32_t k1 = mix32(t->seed ^ mix32((uint32_t)row * 0x9e3779b9u + (uint32_t)(row >> 32)));
    uint32_t k2 = mix32(k1 ^ 0x68e31da4u);
    float u_row = (float)(mix32(k2) >> 8) * 0x1p-24f;
    float rs = t->std * (0.75f + 0.5f * u_row) * ((mix32(k1 + 17u) & 255u) == 0 ? 4.0f : 1.0f);
    float center = 0.0f;
    if (t->kind == K_NORM) {
        rs = 0.05f;
        center = 1.0f;
    }
    const float s16 = 0x1p-16f, bell = 2.0f; /* sum of 3 uniforms has variance 1/4 */
    int64_t n = t->cols;
    for (int64_t j = 0; j < n; j++) {
        uint32_t h1 = mix32(k1 + (uint32_t)j * 0x9e3779b9u);
        uint32_t h2 = mix32(k2 + (uint32_t)j * 0x9e3779b9u);
        float g = ((float)(h1 & 0xffffu) + (float)(h1 >> 16) + (float)(h2 & 0xffffu)) * s16 - 1.5f;
        float u = (float)(h2 >> 16) * s16;
        float u2 = u * u, u4 = u2 * u2, u8 = u4 * u4;
        out[j] = center + rs * bell * g * (1.0f + 3.0f * u8);
    }
}

QP_GEN_CLONES static void to_bf16(const float *x, int64_t n, uint16_t *dst)
{
    for (int64_t i = 0; i < n; i++) { /* round to nearest even; no NaN here */
        uint32_t u;
        memcpy(&u, &x[i], 4);
        dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

/* f32 -> F8_E4M3 ("fn": bias 7, max 448, no inf), round to nearest even,
 * saturating. */
static uint8_t to_e4m3(float x)
{
    uint8_t sign = signbit(x) ? 0x80 : 0;
    float f = fabsf(x);
    if (isnan(f))
        return sign | 0x7f;
    if (f >= 448.0f)
        return sign | 0x7e;
    if (f < 0x1p-6f) /* subnormal: steps of 2^-9; 8 steps is the smallest normal's code */
        return sign | (uint8_t)rintf(f * 512.0f);
    int e;
    float fr = frexpf(f, &e); /* f = fr * 2^e, fr in [0.5, 1) */
    int exp = e - 1, m = (int)rintf((fr * 2.0f - 1.0f) * 8.0f);
    if (m == 8) {
        m = 0;
        exp++;
    }
    int code = ((exp + 7) << 3) | m;
    return sign | (uint8_t)(code > 0x7e ? 0x7e : code);
}

/* ------------------------------------------------------------ tensor list */

static tspec *add(tlist *l, const char *name, int kind, int dtype, int64_t rows, int64_t cols, int n_dims,
                  uint32_t seed)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->t = realloc(l->t, (size_t)l->cap * sizeof *l->t);
        if (!l->t) {
            fprintf(stderr, "gen_checkpoint: out of memory\n");
            exit(1);
        }
    }
    tspec *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->n_dims = n_dims;
    t->nbytes = (uint64_t)(rows * cols) * (dtype == DT_BF16 ? 2 : dtype == DT_F8 ? 1 : 4);
    t->seed = name_seed(name, seed);
    t->std = 0.02f;
    t->scale = -1;
    return t;
}

/* A projection: BF16, or F8_E4M3 plus its F32 scale tensor. */
static void add_matrix(tlist *l, const char *name, int64_t rows, int64_t cols, int fp8, uint32_t seed)
{
    add(l, name, K_MATRIX, fp8 ? DT_F8 : DT_BF16, rows, cols, 2, seed);
    if (!fp8)
        return;
    int w = l->n - 1;
    char sn[sizeof l->t[0].name];
    if (snprintf(sn, sizeof sn, "%s_scale_inv", name) >= (int)sizeof sn) {
        fprintf(stderr, "gen_checkpoint: tensor name too long: %s\n", name);
        exit(1);
    }
    add(l, sn, K_MATRIX, DT_F32, (rows + FP8_BLOCK - 1) / FP8_BLOCK, (cols + FP8_BLOCK - 1) / FP8_BLOCK, 2, seed);
    l->t[w].scale = l->n - 1;
}

static void build_list(tlist *l, const preset *p, int experts, int fp8, uint32_t seed)
{
    char nm[160];
    int64_t H = p->hidden, QD = (int64_t)p->heads * p->head_dim, KD = (int64_t)p->kv_heads * p->head_dim;
    add(l, "model.embed_tokens.weight", K_MATRIX, DT_BF16, p->vocab, H, 2, seed);
    for (int L = 0; L < p->layers; L++) {
#define LN(s) (snprintf(nm, sizeof nm, "model.layers.%d.%s", L, s), nm)
        add(l, LN("input_layernorm.weight"), K_NORM, DT_BF16, 1, H, 1, seed);
        add_matrix(l, LN("self_attn.q_proj.weight"), QD, H, fp8, seed);
        add_matrix(l, LN("self_attn.k_proj.weight"), KD, H, fp8, seed);
        add_matrix(l, LN("self_attn.v_proj.weight"), KD, H, fp8, seed);
        add_matrix(l, LN("self_attn.o_proj.weight"), H, QD, fp8, seed);
        add(l, LN("self_attn.q_norm.weight"), K_NORM, DT_BF16, 1, p->head_dim, 1, seed);
        add(l, LN("self_attn.k_norm.weight"), K_NORM, DT_BF16, 1, p->head_dim, 1, seed);
        if (experts > 0) {
            add(l, LN("mlp.gate.weight"), K_MATRIX, DT_BF16, experts, H, 2, seed);
            for (int e = 0; e < experts; e++) {
                char s[96];
                snprintf(s, sizeof s, "mlp.experts.%d.gate_proj.weight", e);
                add_matrix(l, LN(s), p->moe_inter, H, fp8, seed);
                snprintf(s, sizeof s, "mlp.experts.%d.up_proj.weight", e);
                add_matrix(l, LN(s), p->moe_inter, H, fp8, seed);
                snprintf(s, sizeof s, "mlp.experts.%d.down_proj.weight", e);
                add_matrix(l, LN(s), H, p->moe_inter, fp8, seed);
            }
        } else {
            add_matrix(l, LN("mlp.gate_proj.weight"), p->inter, H, fp8, seed);
            add_matrix(l, LN("mlp.up_proj.weight"), p->inter, H, fp8, seed);
            add_matrix(l, LN("mlp.down_proj.weight"), H, p->inter, fp8, seed);
        }
        add(l, LN("post_attention_layernorm.weight"), K_NORM, DT_BF16, 1, H, 1, seed);
#undef LN
    }
    add(l, "model.norm.weight", K_NORM, DT_BF16, 1, H, 1, seed);
    add(l, "lm_head.weight", K_MATRIX, DT_BF16, p->vocab, H, 2, seed);
}

/* Greedy: a new shard when the next tensor (with its scales) would pass
 * the limit, as transformers' save_pretrained does. */
static int assign_shards(tlist *l, uint64_t limit)
{
    int shard = 0;
    uint64_t used = 0;
    for (int i = 0; i < l->n; i++) {
        tspec *t = &l->t[i];
        if (t->dtype == DT_F32 && t->kind == K_MATRIX && i > 0 && l->t[i - 1].scale == i)
            continue; /* placed with its weight */
        uint64_t sz = t->nbytes + (t->scale >= 0 ? l->t[t->scale].nbytes : 0);
        if (used > 0 && used + sz > limit) {
            shard++;
            used = 0;
        }
        t->shard = shard;
        t->offset = used;
        used += t->nbytes;
        if (t->scale >= 0) {
            l->t[t->scale].shard = shard;
            l->t[t->scale].offset = used;
            used += l->t[t->scale].nbytes;
        }
    }
    return shard + 1;
}

/* ------------------------------------------------------------ writing */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 65536;
        while (nc < b->n + (size_t)k + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            fprintf(stderr, "gen_checkpoint: out of memory\n");
            exit(1);
        }
        b->p = np;
        b->cap = nc;
    }
}

static const char *dtype_name(int dt) { return dt == DT_BF16 ? "BF16" : dt == DT_F8 ? "F8_E4M3" : "F32"; }

static char *shard_name(int i, int n)
{
    static char buf[64];
    if (n == 1)
        snprintf(buf, sizeof buf, "model.safetensors");
    else
        snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", i + 1, n);
    return buf;
}

typedef struct {
    const tlist *l;
    const work_item *items;
    int fd;
    uint64_t data_start; /* file offset of the data region */
    int64_t max_cols;
    int failed;
} shard_job;

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = pwrite(fd, p, n, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* FP8 strip of up to 128 rows: block maxima -> one row of scales, then
 * codes. scale_inv = amax / 448 so the block's largest value maps to 448. */
static int write_fp8_strip(shard_job *j, const tspec *t, const work_item *it, float *f, uint8_t *codes,
                           float *scales)
{
    int64_t C = t->cols, nb = (C + FP8_BLOCK - 1) / FP8_BLOCK;
    for (int64_t r = 0; r < it->rows; r++)
        gen_row(t, it->row0 + r, f + r * C);
    for (int64_t b = 0; b < nb; b++) {
        float amax = 0.0f;
        int64_t c1 = (b + 1) * FP8_BLOCK < C ? (b + 1) * FP8_BLOCK : C;
        for (int64_t r = 0; r < it->rows; r++)
            for (int64_t c = b * FP8_BLOCK; c < c1; c++)
                amax = fmaxf(amax, fabsf(f[r * C + c]));
        float s = amax > 0.0f ? amax / 448.0f : 1.0f;
        scales[b] = s;
        for (int64_t r = 0; r < it->rows; r++)
            for (int64_t c = b * FP8_BLOCK; c < c1; c++)
                codes[r * C + c] = to_e4m3(f[r * C + c] / s);
    }
    const tspec *sc = &j->l->t[t->scale];
    if (pwrite_all(j->fd, codes, (size_t)(it->rows * C), j->data_start + t->offset + (uint64_t)(it->row0 * C)) ||
        pwrite_all(j->fd, scales, (size_t)nb * 4, j->data_start + sc->offset + (uint64_t)(it->row0 / FP8_BLOCK * nb) * 4))
        return -1;
    return 0;
}

static void run_items(void *ctx, int64_t begin, int64_t end, int tid)
{
    (void)tid;
    shard_job *j = ctx;
    int64_t rows_max = FP8_BLOCK;
    size_t nf = (size_t)(rows_max * j->max_cols);
    if (nf < (size_t)(CHUNK_BYTES / 2))
        nf = (size_t)(CHUNK_BYTES / 2);
    float *f = malloc(nf * sizeof(float));
    uint16_t *h = malloc(nf * sizeof(uint16_t));
    float *scales = malloc((size_t)(j->max_cols / FP8_BLOCK + 1) * sizeof(float));
    if (!f || !h || !scales) {
        j->failed = 1;
        goto out;
    }
    for (int64_t i = begin; i < end && !j->failed; i++) {
        const work_item *it = &j->items[i];
        const tspec *t = &j->l->t[it->tensor];
        int rc;
        if (t->dtype == DT_F8) {
            rc = write_fp8_strip(j, t, it, f, (uint8_t *)h, scales);
        } else {
            for (int64_t r = 0; r < it->rows; r++)
                gen_row(t, it->row0 + r, f + r * t->cols);
            to_bf16(f, it->rows * t->cols, h);
            rc = pwrite_all(j->fd, h, (size_t)(it->rows * t->cols) * 2,
                            j->data_start + t->offset + (uint64_t)(it->row0 * t->cols) * 2);
        }
        if (rc)
            j->failed = 1;
    }
out:
    free(f);
    free(h);
    free(scales);
}

static int write_shard(const char *dir, const tlist *l, int shard, int n_shards, int threads, uint64_t *total)
{
    sbuf hdr = {0};
    sb_printf(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    int64_t n_items = 0, max_cols = 1;
    for (int i = 0; i < l->n; i++) {
        const tspec *t = &l->t[i];
        if (t->shard != shard)
            continue;
        if (t->n_dims == 1)
            sb_printf(&hdr, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}", t->name,
                      dtype_name(t->dtype), (long long)t->cols, (unsigned long long)t->offset,
                      (unsigned long long)(t->offset + t->nbytes));
        else
            sb_printf(&hdr, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}", t->name,
                      dtype_name(t->dtype), (long long)t->rows, (long long)t->cols, (unsigned long long)t->offset,
                      (unsigned long long)(t->offset + t->nbytes));
        if (t->cols > max_cols)
            max_cols = t->cols;
    }
    sb_printf(&hdr, "}");
    while (hdr.n % 8) /* data starts 8-byte aligned, as the Hub's writer pads */
        sb_printf(&hdr, " ");

    /* Work items: FP8 weights by 128-row strips (their scales are written
     * with them), bf16 by ~4 MB runs of rows. */
    work_item *items = NULL;
    int64_t cap = 0;
    for (int pass = 0; pass < 2; pass++) {
        n_items = 0;
        for (int i = 0; i < l->n; i++) {
            const tspec *t = &l->t[i];
            if (t->shard != shard || (t->dtype == DT_F32))
                continue;
            int64_t step = t->dtype == DT_F8 ? FP8_BLOCK : CHUNK_BYTES / (2 * t->cols);
            if (step < 1)
                step = 1;
            for (int64_t r = 0; r < t->rows; r += step) {
                if (pass == 1)
                    items[n_items] = (work_item){i, r, t->rows - r < step ? t->rows - r : step};
                n_items++;
            }
        }
        if (pass == 0) {
            cap = n_items;
            items = malloc((size_t)(cap ? cap : 1) * sizeof *items);
            if (!items) {
                free(hdr.p);
                return -1;
            }
        }
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, shard_name(shard, n_shards));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        fprintf(stderr, "gen_checkpoint: %s: %s\n", path, strerror(errno));
        free(hdr.p);
        free(items);
        return -1;
    }
    uint64_t hlen = hdr.n;
    unsigned char le[8];
    for (int b = 0; b < 8; b++)
        le[b] = (unsigned char)(hlen >> (8 * b));
    int rc = pwrite_all(fd, le, 8, 0) || pwrite_all(fd, hdr.p, hdr.n, 8);
    shard_job job = {l, items, fd, 8 + hlen, max_cols, 0};
    if (!rc) {
        qp_parallel_for(threads, n_items, run_items, &job);
        rc = job.failed;
    }
    if (!rc)
        rc = fdatasync(fd); /* so the timing includes getting it to disk */
    if (close(fd) != 0)
        rc = -1;
    if (rc)
        fprintf(stderr, "gen_checkpoint: writing %s failed: %s\n", path, strerror(errno));
    for (int i = 0; i < l->n; i++)
        if (l->t[i].shard == shard)
            *total += l->t[i].nbytes;
    free(hdr.p);
    free(items);
    return rc ? -1 : 0;
}

static int write_text(const char *dir, const char *name, const char *text, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, n, f) != n) {
        if (f)
            fclose(f);
        fprintf(stderr, "gen_checkpoint: cannot write %s\n", path);
        return -1;
    }
    return fclose(f) ? -1 : 0;
}

static int copy_fixture(const char *dir, const char *name)
{
    char from[4096];
    snprintf(from, sizeof from, "%s/models/qwen3-tiny/%s", QP_FIXTURES, name);
    FILE *f = fopen(from, "rb");
    if (!f) {
        fprintf(stderr, "gen_checkpoint: cannot read %s\n", from);
        return -1;
    }
    sbuf b = {0};
    char tmp[65536];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
        sb_printf(&b, "%.*s", (int)k, tmp);
    fclose(f);
    int rc = write_text(dir, name, b.p ? b.p : "", b.n);
    free(b.p);
    return rc;
}

static int write_meta(const char *dir, const tlist *l, int n_shards, const preset *p, int experts, int fp8,
                      uint64_t total)
{
    sbuf b = {0};
    sb_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {", (unsigned long long)total);
    for (int i = 0; i < l->n; i++)
        sb_printf(&b, "%s\n    \"%s\": \"%s\"", i ? "," : "", l->t[i].name, shard_name(l->t[i].shard, n_shards));
    sb_printf(&b, "\n  }\n}\n");
    int rc = n_shards > 1 ? write_text(dir, "model.safetensors.index.json", b.p, b.n) : 0;
    b.n = 0;
    /* Token ids are the fixture tokenizer's (<|endoftext|> = 8189). */
    sb_printf(&b,
              "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"attention_bias\": false,\n"
              "  \"attention_dropout\": 0.0,\n  \"bos_token_id\": 8189,\n  \"eos_token_id\": 8189,\n"
              "  \"head_dim\": %d,\n  \"hidden_act\": \"silu\",\n  \"hidden_size\": %d,\n"
              "  \"initializer_range\": 0.02,\n  \"intermediate_size\": %d,\n  \"max_position_embeddings\": %d,\n"
              "  \"max_window_layers\": %d,\n  \"num_attention_heads\": %d,\n  \"num_hidden_layers\": %d,\n"
              "  \"num_key_value_heads\": %d,\n  \"rms_norm_eps\": 1e-06,\n  \"rope_scaling\": null,\n"
              "  \"rope_theta\": 1000000.0,\n  \"sliding_window\": null,\n  \"tie_word_embeddings\": false,\n"
              "  \"torch_dtype\": \"bfloat16\",\n  \"transformers_version\": \"4.51.0\",\n  \"use_cache\": true,\n"
              "  \"use_sliding_window\": false,\n  \"vocab_size\": %d",
              experts > 0 ? "Qwen3MoeForCausalLM" : "Qwen3ForCausalLM", experts > 0 ? "qwen3_moe" : "qwen3",
              p->head_dim, p->hidden, p->inter, p->max_pos, p->layers, p->heads, p->layers, p->kv_heads, p->vocab);
    if (experts > 0)
        sb_printf(&b,
                  ",\n  \"decoder_sparse_step\": 1,\n  \"mlp_only_layers\": [],\n  \"moe_intermediate_size\": %d,\n"
                  "  \"norm_topk_prob\": true,\n  \"num_experts\": %d,\n  \"num_experts_per_tok\": %d,\n"
                  "  \"output_router_logits\": false,\n  \"router_aux_loss_coef\": 0.001",
                  p->moe_inter, experts, p->top_k < experts ? p->top_k : experts);
    if (fp8)
        sb_printf(&b, ",\n  \"quantization_config\": {\n    \"activation_scheme\": \"dynamic\",\n"
                      "    \"fmt\": \"e4m3\",\n    \"quant_method\": \"fp8\",\n"
                      "    \"weight_block_size\": [%d, %d]\n  }",
                  FP8_BLOCK, FP8_BLOCK);
    sb_printf(&b, "\n}\n");
    if (!rc)
        rc = write_text(dir, "config.json", b.p, b.n);
    free(b.p);
    static const char *const TOK[] = {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                                      "generation_config.json"};
    for (size_t i = 0; i < sizeof TOK / sizeof TOK[0] && !rc; i++)
        rc = copy_fixture(dir, TOK[i]);
    return rc;
}

/* ------------------------------------------------------------ main */

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return -1;
    double mul = 1;
    if (*end) {
        static const char SUF[] = "KMGT";
        const char *q = strchr(SUF, end[0] >= 'a' ? end[0] - 32 : end[0]);
        if (!q || !end[0])
            return -1;
        int binary = end[1] == 'i' || end[1] == 'I';
        for (const char *c = SUF; c <= q; c++)
            mul *= binary ? 1024.0 : 1000.0; /* "5G"/"5GB" are decimal, as in transformers */
        end += 1 + binary;
        if (*end == 'B' || *end == 'b')
            end++;
        if (*end)
            return -1;
    }
    *out = (uint64_t)(v * mul);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: gen_checkpoint --preset NAME --out DIR [--layers N] [--experts N] [--vocab N] [--shard-size 5G]\n"
            "                      [--dtype bf16|fp8] [--seed S] [-t THREADS]\n"
            "presets: qwen3-30b-a3b, qwen3-235b-a22b; --experts 0 makes a dense Qwen3 (intermediate_size)\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    const preset *p = NULL;
    const char *out = NULL;
    int layers = -1, experts = -1, vocab = -1, fp8 = 0, threads = qp_cpu_count();
    uint64_t shard_size = 5000000000ull;
    uint32_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage();
            return 0;
        }
        if (!v) {
            usage();
            return 2;
        }
        i++;
        if (!strcmp(a, "--preset")) {
            for (size_t k = 0; k < sizeof PRESETS / sizeof PRESETS[0]; k++)
                if (!strcmp(v, PRESETS[k].name))
                    p = &PRESETS[k];
            if (!p) {
                fprintf(stderr, "gen_checkpoint: unknown preset %s\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--layers")) {
            layers = atoi(v);
        } else if (!strcmp(a, "--experts")) {
            experts = atoi(v);
        } else if (!strcmp(a, "--vocab")) {
            vocab = atoi(v);
        } else if (!strcmp(a, "--seed")) {
            seed = (uint32_t)strtoul(v, NULL, 0);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            threads = atoi(v);
        } else if (!strcmp(a, "--shard-size")) {
            if (parse_size(v, &shard_size) != 0) {
                fprintf(stderr, "gen_checkpoint: bad --shard-size %s\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--dtype")) {
            if (strcmp(v, "bf16") && strcmp(v, "fp8")) {
                fprintf(stderr, "gen_checkpoint: --dtype is bf16 or fp8\n");
                return 2;
            }
            fp8 = !strcmp(v, "fp8");
        } else {
            usage();
            return 2;
        }
    }
    if (!p || !out || layers == 0 || layers < -1 || experts < -1 || vocab == 0 || vocab < -1 || threads < 1) {
        usage();
        return 2;
    }
    preset pr = *p;
    if (layers > 0)
        pr.layers = layers;
    if (experts >= 0)
        pr.experts = experts;
    if (vocab > 0)
        pr.vocab = vocab;
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "gen_checkpoint: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    tlist l = {0};
    build_list(&l, &pr, pr.experts, fp8, seed);
    int n_shards = assign_shards(&l, shard_size);
    uint64_t params = 0;
    for (int i = 0; i < l.n; i++)
        if (!(l.t[i].dtype == DT_F32))
            params += (uint64_t)(l.t[i].rows * l.t[i].cols);
    double t0 = now();
    uint64_t total = 0;
    for (int s = 0; s < n_shards; s++)
        if (write_shard(out, &l, s, n_shards, threads, &total) != 0)
            return 1;
    double dt = now() - t0;
    if (write_meta(out, &l, n_shards, &pr, pr.experts, fp8, total) != 0)
        return 1;
    printf("%-18s %s, %d layers, %d experts, %s\n", "checkpoint", pr.name, pr.layers, pr.experts,
           fp8 ? "F8_E4M3 + F32 block scales" : "BF16");
    printf("%-18s %s\n", "directory", out);
    printf("%-18s %d tensors in %d shard%s\n", "tensors", l.n, n_shards, n_shards > 1 ? "s" : "");
    printf("%-18s %.3f B\n", "parameters", (double)params * 1e-9);
    printf("%-18s %.3f GB\n", "tensor bytes", (double)total * 1e-9);
    printf("%-18s %.2f s, %.2f GB/s (%d threads, fdatasync included)\n", "generation", dt,
           (double)total * 1e-9 / dt, threads);
    free(l.t);
    return 0;
}
