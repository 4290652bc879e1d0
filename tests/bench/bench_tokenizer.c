/* bench_tokenizer.c - how fast the tokenizer loads, encodes and decodes,
 * with the fixture (8k) and the real Qwen3 (151k) vocabularies. Prints a
 * table; best of several runs for the short operations. Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "format/hf_vocab.h"
#include "runtime-lite/tokenizer.h"

#define REPS 5

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_all(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", QP_FIXTURES, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = '\0';
        *len = (size_t)n;
    }
    return b;
}

static void row(const char *vocab, const char *op, size_t bytes, size_t tokens, double sec)
{
    printf("| %-6s | %-36s | %9zu | %8zu | %9.2f | %8.1f |\n", vocab, op, bytes, tokens,
           sec * 1e3, bytes ? (double)bytes / sec / 1e6 : 0.0);
}

static int die(const char *what, const qp_err *err)
{
    char buf[2048];
    qp_err_format(err, buf, sizeof buf);
    fprintf(stderr, "bench_tokenizer: %s: %s\n", what, buf);
    return 1;
}

/* Whole text in one call (the piece cache warms up within the call). */
static int bench_encode(const qp_tokenizer *t, const char *vname, const char *rel)
{
    size_t len;
    char *text = read_all(rel, &len);
    if (!text)
        return 1;
    double best = 1e30;
    size_t n = 0;
    qp_err err;
    for (int r = 0; r < REPS; r++) {
        int32_t *ids;
        double a = now();
        if (qp_tokenizer_encode(t, text, len, 0, &ids, &n, &err) != QP_OK)
            return die("encode", &err);
        double s = now() - a;
        best = s < best ? s : best;
        if (r == REPS - 1) {
            char *dec;
            size_t dl;
            a = now();
            if (qp_tokenizer_decode(t, ids, n, 0, &dec, &dl, &err) != QP_OK)
                return die("decode", &err);
            double d = now() - a;
            char op[64];
            snprintf(op, sizeof op, "decode %s", rel + 5);
            row(vname, op, dl, n, d);
            free(dec);
        }
        free(ids);
    }
    char op[64];
    snprintf(op, sizeof op, "encode %s (one call)", rel + 5);
    row(vname, op, len, n, best);

    /* One call per line: a cold cache every call, as in interactive use. */
    double a = now();
    size_t total = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
        int32_t *ids;
        size_t k;
        if (qp_tokenizer_encode(t, p, l, 0, &ids, &k, &err) != QP_OK)
            return die("encode line", &err);
        total += k;
        free(ids);
        p += l;
    }
    snprintf(op, sizeof op, "encode %s (per line)", rel + 5);
    row(vname, op, len, total, now() - a);
    free(text);
    return 0;
}

/* Worst cases: one huge piece each, merged without help from the cache. */
static int bench_long(const qp_tokenizer *t, const char *vname)
{
    size_t len = 1 << 20;
    char *s = malloc(len);
    if (!s)
        return 1;
    qp_err err;
    int32_t *ids;
    size_t n;
    memset(s, ' ', len);
    double a = now();
    if (qp_tokenizer_encode(t, s, len, 0, &ids, &n, &err) != QP_OK)
        return die("spaces", &err);
    row(vname, "encode 1 MiB of spaces", len, n, now() - a);
    free(ids);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (char)('a' + (x >> 16) % 26);
    }
    a = now();
    if (qp_tokenizer_encode(t, s, len, 0, &ids, &n, &err) != QP_OK)
        return die("letters", &err);
    row(vname, "encode 1 MiB random letters (1 word)", len, n, now() - a);
    free(ids);
    free(s);
    return 0;
}

int main(void)
{
    printf("| vocab  | operation                            |     bytes |   tokens |   time ms |     MB/s |\n");
    printf("|--------|--------------------------------------|-----------|----------|-----------|----------|\n");
    char path[4096];
    qp_err err;
    qp_err_clear(&err);

    snprintf(path, sizeof path, "%s/qwen3-tokenizer/tokenizer.json", QP_FIXTURES);
    qp_hf_vocab v;
    double a = now();
    if (qp_hf_vocab_load(path, &v, &err) != QP_OK)
        return die("hf_vocab", &err);
    row("qwen3", "qp_hf_vocab_load tokenizer.json", 0, (size_t)v.n_tokens, now() - a);
    qp_hf_vocab_free(&v);

    static const struct {
        const char *name, *json;
    } vocabs[] = {
        {"tiny", "models/qwen3-tiny/tokenizer.json"},
        {"qwen3", "qwen3-tokenizer/tokenizer.json"},
    };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", QP_FIXTURES, vocabs[i].json);
        qp_tokenizer *t;
        a = now();
        if (qp_tokenizer_load_json(path, &t, &err) != QP_OK)
            return die("load", &err);
        row(vocabs[i].name, "qp_tokenizer_load_json", 0, (size_t)qp_tokenizer_n_tokens(t),
            now() - a);
        if (bench_encode(t, vocabs[i].name, "text/calib.txt") ||
            bench_encode(t, vocabs[i].name, "text/eval.txt") || bench_long(t, vocabs[i].name))
            return 1;
        qp_tokenizer_free(t);
    }
    return 0;
}
