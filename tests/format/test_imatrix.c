/* test_imatrix.c - importance matrices: llama.cpp's two fixture files read
 * (dense and MoE with a never-routed expert), our GGUF writer reproducing
 * them, the legacy .dat format both ways, the accumulator and merge, and
 * hostile files (each rejected as QP_ERR_BAD_INPUT naming file and entry). */
/* ctest-labels: fast threads */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "format/imatrix.h"
#include "support/qp_test.h"

#define DENSE "ggml-vectors/imatrix-calib.gguf"
#define MOE "ggml-vectors/imatrix-calib-moe.gguf"

static char *g_tmp;

static int setup(void **state)
{
    (void)state;
    g_tmp = qp_test_tmpdir("imatrix");
    return g_tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_tmp);
    free(g_tmp);
    return 0;
}

static qp_imatrix *read_ok(const char *path)
{
    qp_imatrix *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    qp_status s = qp_imatrix_read(path, &m, &err);
    if (s != QP_OK) {
        char msg[2048];
        qp_err_format(&err, msg, sizeof msg);
        fail_msg("reading %s: %s", path, msg);
    }
    assert_non_null(m);
    return m;
}

static char *tmp_path(const char *name)
{
    static char buf[4][4096];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, 4096, "%s/%s", g_tmp, name);
    return p;
}

/* The fixture's own tensors, read with the plain GGUF reader. */
static const float *raw_f32(const qp_gguf *g, const char *entry, const char *suffix, int64_t *n)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", entry, suffix);
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, name);
    assert_non_null(t);
    assert_int_equal(t->type, QP_GGML_F32);
    *n = (int64_t)(t->nbytes / 4);
    return t->data;
}

/* Sums and counts of every entry equal the file's tensors bit for bit. */
static void check_against_file(const qp_imatrix *m, const char *path)
{
    qp_gguf *g = NULL;
    assert_int_equal(qp_gguf_open(path, &g, NULL), QP_OK);
    assert_int_equal(qp_gguf_tensor_count(g), 2 * qp_imatrix_count(m));
    for (int64_t i = 0; i < qp_imatrix_count(m); i++) {
        const char *name = qp_imatrix_name(m, i);
        int64_t ns, nc;
        const float *s = raw_f32(g, name, "in_sum2", &ns);
        const float *c = raw_f32(g, name, "counts", &nc);
        assert_int_equal(ns, qp_imatrix_n_in(m, i) * qp_imatrix_n_expert(m, i));
        assert_int_equal(nc, qp_imatrix_n_expert(m, i));
        assert_memory_equal(qp_imatrix_sums(m, i), s, (size_t)ns * 4);
        for (int64_t x = 0; x < nc; x++) {
            float cx;
            memcpy(&cx, c + x, 4);
            assert_true(qp_imatrix_rows(m, i, x) == (double)cx);
        }
    }
    qp_gguf_close(g);
}

static void test_read_dense(void **state)
{
    (void)state;
    qp_imatrix *m = read_ok(qp_fixture(DENSE));
    assert_int_equal(qp_imatrix_source_format(m), QP_IMATRIX_FORMAT_GGUF);
    assert_int_equal(qp_imatrix_count(m), 28); /* 4 layers x q k v o gate up down */
    assert_int_equal(qp_imatrix_chunk_count(m), 114);
    assert_int_equal(qp_imatrix_chunk_size(m), 512);
    assert_int_equal(qp_imatrix_dataset_count(m), 1);
    const char *ds = qp_imatrix_dataset(m, 0);
    assert_true(strlen(ds) >= 9 && strcmp(ds + strlen(ds) - 9, "calib.txt") == 0);
    assert_int_equal(qp_imatrix_find(m, "output.weight"), -1);
    assert_int_equal(qp_imatrix_find(m, "token_embd.weight"), -1);
    for (int64_t i = 0; i < qp_imatrix_count(m); i++) {
        const char *n = qp_imatrix_name(m, i);
        assert_int_equal(qp_imatrix_n_expert(m, i), 1);
        assert_int_equal(qp_imatrix_n_in(m, i), strstr(n, "ffn_down") ? 768 : 256);
        /* Every chunk of 512 tokens went through every dense matrix. */
        assert_true(qp_imatrix_rows(m, i, 0) == 114.0 * 512);
    }
    int64_t d = qp_imatrix_find(m, "blk.0.ffn_down.weight");
    assert_true(d >= 0);
    float mean[768];
    assert_int_equal(qp_imatrix_mean(m, d, 0, mean), 1);
    for (int j = 0; j < 768; j++) {
        assert_true(isfinite(mean[j]) && mean[j] >= 0);
        assert_true(mean[j] == (float)((double)qp_imatrix_sums(m, d)[j] / (114.0 * 512)));
    }
    check_against_file(m, qp_fixture(DENSE));
    qp_imatrix_free(m);
}

static void test_read_moe(void **state)
{
    (void)state;
    qp_imatrix *m = read_ok(qp_fixture(MOE));
    assert_int_equal(qp_imatrix_count(m), 32); /* 4 layers x q k v o router gate up down */
    int zero_experts = 0;
    for (int64_t i = 0; i < qp_imatrix_count(m); i++) {
        const char *n = qp_imatrix_name(m, i);
        int exps = strstr(n, "_exps.") != NULL;
        assert_int_equal(qp_imatrix_n_expert(m, i), exps ? 16 : 1);
        assert_int_equal(qp_imatrix_n_in(m, i), 256);
        double total = 0;
        for (int64_t x = 0; x < qp_imatrix_n_expert(m, i); x++) {
            double c = qp_imatrix_rows(m, i, x);
            total += c;
            if (c == 0) {
                zero_experts++;
                assert_int_equal(x, 13);
                assert_true(strncmp(n, "blk.1.ffn_", 10) == 0 && exps);
                float v[256];
                assert_int_equal(qp_imatrix_mean(m, i, x, v), 0);
                for (int j = 0; j < 256; j++)
                    assert_true(qp_imatrix_sums(m, i)[x * 256 + j] == 0.0f);
            }
        }
        /* top-4 routing: the experts together see 4 rows per token. */
        assert_true(total == (exps ? 4.0 : 1.0) * 114 * 512);
    }
    assert_int_equal(zero_experts, 3); /* blk.1.ffn_{gate,up,down}_exps expert 13 */
    check_against_file(m, qp_fixture(MOE));
    qp_imatrix_free(m);
}

/* Keys (names, types, order) and tensors (names, dims, types, order) of two
 * GGUF files agree; data too when `data` is set. */
static void same_layout(const char *a, const char *b)
{
    qp_gguf *ga = NULL, *gb = NULL;
    assert_int_equal(qp_gguf_open(a, &ga, NULL), QP_OK);
    assert_int_equal(qp_gguf_open(b, &gb, NULL), QP_OK);
    assert_int_equal(qp_gguf_kv_count(ga), qp_gguf_kv_count(gb));
    for (int64_t k = 0; k < qp_gguf_kv_count(ga); k++) {
        qp_gguf_str ka = qp_gguf_kv_key(ga, k), kb = qp_gguf_kv_key(gb, k);
        assert_int_equal(ka.len, kb.len);
        assert_memory_equal(ka.ptr, kb.ptr, ka.len);
        assert_int_equal(qp_gguf_kv_type(ga, k), qp_gguf_kv_type(gb, k));
    }
    uint64_t u;
    assert_true(qp_gguf_get_u64(gb, "imatrix.chunk_count", &u) && u == 114);
    assert_int_equal(qp_gguf_kv_type(gb, qp_gguf_find_key(gb, "imatrix.chunk_count")), QP_GGUF_U32);
    assert_int_equal(qp_gguf_kv_type(gb, qp_gguf_find_key(gb, "imatrix.chunk_size")), QP_GGUF_U32);
    assert_int_equal(qp_gguf_arr_type(gb, qp_gguf_find_key(gb, "imatrix.datasets")), QP_GGUF_STRING);
    assert_int_equal(qp_gguf_tensor_count(ga), qp_gguf_tensor_count(gb));
    for (int64_t i = 0; i < qp_gguf_tensor_count(ga); i++) {
        const qp_gguf_tensor *ta = qp_gguf_tensor_at(ga, i), *tb = qp_gguf_tensor_at(gb, i);
        assert_int_equal(ta->name.len, tb->name.len);
        assert_memory_equal(ta->name.ptr, tb->name.ptr, ta->name.len);
        assert_int_equal(ta->n_dims, tb->n_dims);
        assert_memory_equal(ta->ne, tb->ne, sizeof ta->ne);
        assert_int_equal(ta->type, tb->type);
        assert_int_equal(ta->nbytes, tb->nbytes);
        assert_memory_equal(ta->data, tb->data, ta->nbytes);
    }
    qp_gguf_close(ga);
    qp_gguf_close(gb);
}

static void roundtrip(const char *fixture, const char *out_name)
{
    qp_imatrix *m = read_ok(qp_fixture(fixture));
    const char *out = tmp_path(out_name);
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_imatrix_write(m, out, &err), QP_OK);
    same_layout(qp_fixture(fixture), out);
    qp_imatrix *r = read_ok(out);
    check_against_file(r, qp_fixture(fixture));
    assert_int_equal(qp_imatrix_count(r), qp_imatrix_count(m));
    assert_int_equal(qp_imatrix_chunk_count(r), qp_imatrix_chunk_count(m));
    assert_int_equal(qp_imatrix_chunk_size(r), qp_imatrix_chunk_size(m));
    assert_int_equal(qp_imatrix_dataset_count(r), 1);
    assert_string_equal(qp_imatrix_dataset(r, 0), qp_imatrix_dataset(m, 0));
    /* llama.cpp and qpack serialise GGUF alike: the very same bytes. */
    size_t na, nb;
    void *a = qp_test_read_file(qp_fixture(fixture), &na), *b = qp_test_read_file(out, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
    qp_imatrix_free(r);
    qp_imatrix_free(m);
}

static void test_write_roundtrip_dense(void **state)
{
    (void)state;
    roundtrip(DENSE, "dense.gguf");
}

static void test_write_roundtrip_moe(void **state)
{
    (void)state;
    roundtrip(MOE, "moe.gguf");
}

static void test_accumulate(void **state)
{
    (void)state;
    qp_imatrix *m = qp_imatrix_new();
    assert_non_null(m);
    qp_err err;
    qp_err_clear(&err);
    int64_t e = qp_imatrix_add(m, "blk.0.ffn_up_exps.weight", 3, 2, &err);
    assert_int_equal(e, 0);
    assert_int_equal(qp_imatrix_add(m, "blk.0.ffn_up_exps.weight", 3, 2, &err), 0); /* same shape: same entry */
    assert_int_equal(qp_imatrix_add(m, "blk.0.ffn_up_exps.weight", 4, 2, &err), -1);
    assert_int_equal(err.status, QP_ERR_USAGE);
    assert_string_equal(err.tensor, "blk.0.ffn_up_exps.weight");
    assert_int_equal(qp_imatrix_add(m, "", 4, 1, &err), -1);
    assert_int_equal(qp_imatrix_add(m, "x", 0, 1, &err), -1);
    assert_int_equal(qp_imatrix_add(m, "a.name.that.is.much.too.long.for.a.llama.cpp.tensor.name.buffer", 4, 1, &err),
                     -1);
    const float x[] = {1, 2, 3, -1, 0.5f, 0};
    assert_int_equal(qp_imatrix_accumulate(m, e, 1, x, 2, &err), QP_OK);
    assert_int_equal(qp_imatrix_accumulate(m, e, 1, x, 1, &err), QP_OK);
    const float *s = qp_imatrix_sums(m, e);
    assert_true(s[0] == 0 && s[1] == 0 && s[2] == 0); /* expert 0 untouched */
    assert_true(s[3] == 3.0f && s[4] == 8.25f && s[5] == 18.0f);
    assert_true(qp_imatrix_rows(m, e, 0) == 0 && qp_imatrix_rows(m, e, 1) == 3);
    float mean[3];
    assert_int_equal(qp_imatrix_mean(m, e, 0, mean), 0);
    assert_int_equal(qp_imatrix_mean(m, e, 1, mean), 1);
    assert_true(mean[0] == 1.0f && mean[1] == 2.75f && mean[2] == 6.0f);
    /* Bad input changes nothing. */
    const float bad[] = {1, NAN, 1};
    assert_int_equal(qp_imatrix_accumulate(m, e, 1, bad, 1, &err), QP_ERR_BAD_INPUT);
    assert_string_equal(err.tensor, "blk.0.ffn_up_exps.weight");
    assert_true(s[3] == 3.0f && qp_imatrix_rows(m, e, 1) == 3);
    assert_int_equal(qp_imatrix_accumulate(m, e, 2, x, 1, &err), QP_ERR_USAGE);
    assert_int_equal(qp_imatrix_accumulate(m, 5, 0, x, 1, &err), QP_ERR_USAGE);
    /* An expert with no rows is still written (zero count), as llama.cpp does. */
    const char *out = tmp_path("acc.gguf");
    qp_imatrix_set_chunks(m, 1, 3);
    assert_int_equal(qp_imatrix_add_dataset(m, "calib.txt", &err), QP_OK);
    assert_int_equal(qp_imatrix_write(m, out, &err), QP_OK);
    qp_imatrix *r = read_ok(out);
    assert_int_equal(qp_imatrix_n_expert(r, 0), 2);
    assert_true(qp_imatrix_rows(r, 0, 0) == 0 && qp_imatrix_rows(r, 0, 1) == 3);
    assert_memory_equal(qp_imatrix_sums(r, 0), s, 6 * sizeof(float));
    assert_string_equal(qp_imatrix_dataset(r, 0), "calib.txt");
    qp_imatrix_free(r);
    qp_imatrix_free(m);
}

/* Merging two halves gives what accumulating everything at once gives. */
static void test_merge(void **state)
{
    (void)state;
    enum { N_IN = 8, N_EXP = 3, ROWS = 10 };
    float x[ROWS * N_IN];
    for (int i = 0; i < ROWS * N_IN; i++)
        x[i] = (float)((i * 37) % 11) - 4.5f;
    qp_imatrix *all = qp_imatrix_new(), *a = qp_imatrix_new(), *b = qp_imatrix_new();
    qp_err err;
    qp_err_clear(&err);
    int64_t ea = qp_imatrix_add(all, "e", N_IN, N_EXP, &err), e1 = qp_imatrix_add(a, "e", N_IN, N_EXP, &err),
            e2 = qp_imatrix_add(b, "e", N_IN, N_EXP, &err);
    assert_true(ea == 0 && e1 == 0 && e2 == 0);
    assert_int_equal(qp_imatrix_add(b, "only_b", 2, 1, &err), 1);
    const float y[2] = {3, 4};
    assert_int_equal(qp_imatrix_accumulate(b, 1, 0, y, 1, &err), QP_OK);
    /* expert 0: 7 rows in a, 3 in b; expert 2: only b; expert 1: nobody. */
    assert_int_equal(qp_imatrix_accumulate(all, 0, 0, x, ROWS, &err), QP_OK);
    assert_int_equal(qp_imatrix_accumulate(a, 0, 0, x, 7, &err), QP_OK);
    assert_int_equal(qp_imatrix_accumulate(b, 0, 0, x + 7 * N_IN, 3, &err), QP_OK);
    assert_int_equal(qp_imatrix_accumulate(all, 0, 2, x, 4, &err), QP_OK);
    assert_int_equal(qp_imatrix_accumulate(b, 0, 2, x, 4, &err), QP_OK);
    qp_imatrix_set_chunks(a, 7, 512);
    qp_imatrix_set_chunks(b, 3, 512);
    assert_int_equal(qp_imatrix_add_dataset(a, "one", &err), QP_OK);
    assert_int_equal(qp_imatrix_add_dataset(b, "two", &err), QP_OK);
    assert_int_equal(qp_imatrix_merge(a, b, &err), QP_OK);
    assert_int_equal(qp_imatrix_count(a), 2);
    assert_true(qp_imatrix_rows(a, 0, 0) == 10 && qp_imatrix_rows(a, 0, 1) == 0 && qp_imatrix_rows(a, 0, 2) == 4);
    float ma[N_IN], mb[N_IN];
    for (int xe = 0; xe < N_EXP; xe += 2) {
        assert_int_equal(qp_imatrix_mean(a, 0, xe, ma), 1);
        assert_int_equal(qp_imatrix_mean(all, 0, xe, mb), 1);
        for (int j = 0; j < N_IN; j++)
            assert_true(fabsf(ma[j] - mb[j]) <= 1e-6f * mb[j]);
    }
    assert_int_equal(qp_imatrix_mean(a, 0, 1, ma), 0);
    int64_t ob = qp_imatrix_find(a, "only_b");
    assert_true(ob == 1 && qp_imatrix_sums(a, ob)[0] == 9 && qp_imatrix_sums(a, ob)[1] == 16);
    assert_int_equal(qp_imatrix_chunk_count(a), 10);
    assert_int_equal(qp_imatrix_dataset_count(a), 2);
    assert_string_equal(qp_imatrix_dataset(a, 1), "two");
    /* A shape clash is refused before anything changes. */
    qp_imatrix *c = qp_imatrix_new();
    assert_int_equal(qp_imatrix_add(c, "zzz", 4, 1, &err), 0);
    assert_int_equal(qp_imatrix_add(c, "e", N_IN, 2, &err), 1);
    assert_int_equal(qp_imatrix_merge(a, c, &err), QP_ERR_BAD_INPUT);
    assert_string_equal(err.tensor, "e");
    assert_int_equal(qp_imatrix_count(a), 2);
    /* The fixture merged with itself: counts double, means stay. */
    qp_imatrix *f = read_ok(qp_fixture(MOE)), *g = read_ok(qp_fixture(MOE));
    assert_int_equal(qp_imatrix_merge(f, g, &err), QP_OK);
    assert_int_equal(qp_imatrix_chunk_count(f), 228);
    for (int64_t i = 0; i < qp_imatrix_count(f); i++)
        for (int64_t xe = 0; xe < qp_imatrix_n_expert(f, i); xe++) {
            assert_true(qp_imatrix_rows(f, i, xe) == 2 * qp_imatrix_rows(g, i, xe));
            float v1[256], v2[256];
            int h1 = qp_imatrix_mean(f, i, xe, v1), h2 = qp_imatrix_mean(g, i, xe, v2);
            assert_int_equal(h1, h2);
            if (h1)
                assert_memory_equal(v1, v2, sizeof v1);
        }
    qp_imatrix_free(f);
    qp_imatrix_free(g);
    qp_imatrix_free(c);
    qp_imatrix_free(all);
    qp_imatrix_free(a);
    qp_imatrix_free(b);
}

/* Chunk counts of matrices with different chunk sizes: recomputed from the
 * busiest entry in the destination's chunk size, as llama-imatrix does. */
static void test_merge_chunk_sizes(void **state)
{
    (void)state;
    qp_imatrix *a = qp_imatrix_new(), *b = qp_imatrix_new();
    qp_err err;
    float x[4 * 2] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(qp_imatrix_add(a, "w", 2, 1, &err), 0);
    assert_int_equal(qp_imatrix_add(b, "w", 2, 1, &err), 0);
    for (int k = 0; k < 300; k++) { /* 1200 rows in a, 1000 in b */
        assert_int_equal(qp_imatrix_accumulate(a, 0, 0, x, 4, &err), QP_OK);
        if (k < 250)
            assert_int_equal(qp_imatrix_accumulate(b, 0, 0, x, 4, &err), QP_OK);
    }
    qp_imatrix_set_chunks(a, 2, 512);
    qp_imatrix_set_chunks(b, 3, 256);
    assert_int_equal(qp_imatrix_merge(a, b, &err), QP_OK);
    assert_int_equal(qp_imatrix_chunk_size(a), 512);
    assert_int_equal(qp_imatrix_chunk_count(a), 2200 / 512);
    /* An unknown chunk size (a fresh accumulator) takes the other's. */
    qp_imatrix *c = qp_imatrix_new();
    assert_int_equal(qp_imatrix_merge(c, b, &err), QP_OK);
    assert_int_equal(qp_imatrix_chunk_size(c), 256);
    assert_int_equal(qp_imatrix_chunk_count(c), 3);
    qp_imatrix_free(a);
    qp_imatrix_free(b);
    qp_imatrix_free(c);
}

/* Threads feeding different experts of one entry at the same time (the
 * documented safe case) give what one thread gives. */
enum { T_IN = 96, T_EXP = 4, T_ROWS = 33, T_ROUNDS = 50 };

typedef struct {
    qp_imatrix *m;
    int expert;
    const float *x;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    for (int k = 0; k < T_ROUNDS; k++)
        if (qp_imatrix_accumulate(f->m, 0, f->expert, f->x, T_ROWS, NULL) != QP_OK)
            return arg;
    return NULL;
}

static void test_accumulate_threads(void **state)
{
    (void)state;
    float *x = malloc(sizeof(float) * T_IN * T_ROWS * T_EXP);
    for (int i = 0; i < T_IN * T_ROWS * T_EXP; i++)
        x[i] = sinf((float)i * 0.37f) * 3.0f;
    qp_imatrix *par = qp_imatrix_new(), *seq = qp_imatrix_new();
    assert_int_equal(qp_imatrix_add(par, "blk.0.ffn_down_exps.weight", T_IN, T_EXP, NULL), 0);
    assert_int_equal(qp_imatrix_add(seq, "blk.0.ffn_down_exps.weight", T_IN, T_EXP, NULL), 0);
    pthread_t th[T_EXP];
    feeder f[T_EXP];
    for (int e = 0; e < T_EXP; e++) {
        f[e] = (feeder){par, e, x + e * T_IN * T_ROWS};
        assert_int_equal(pthread_create(&th[e], NULL, feed, &f[e]), 0);
    }
    for (int e = 0; e < T_EXP; e++) {
        void *r;
        assert_int_equal(pthread_join(th[e], &r), 0);
        assert_null(r);
    }
    for (int e = 0; e < T_EXP; e++) {
        feeder g = {seq, e, x + e * T_IN * T_ROWS};
        assert_null(feed(&g));
    }
    assert_memory_equal(qp_imatrix_sums(par, 0), qp_imatrix_sums(seq, 0), sizeof(float) * T_IN * T_EXP);
    for (int e = 0; e < T_EXP; e++)
        assert_true(qp_imatrix_rows(par, 0, e) == T_ROWS * T_ROUNDS);
    qp_imatrix_free(par);
    qp_imatrix_free(seq);
    free(x);
}

/* 100k entries: name lookups are hashed, so reading stays fast. */
static void test_many_entries(void **state)
{
    (void)state;
    enum { N = 100000 };
    size_t cap = 4 + (size_t)N * 32 + 8, n = 0;
    uint8_t *b = malloc(cap);
#define PUT32(v) do { uint32_t u_ = (uint32_t)(v); memcpy(b + n, &u_, 4); n += 4; } while (0)
    PUT32(N);
    for (int i = 0; i < N; i++) {
        char name[16];
        int len = snprintf(name, sizeof name, "e%d", i);
        PUT32(len);
        memcpy(b + n, name, (size_t)len);
        n += (size_t)len;
        PUT32(1);
        PUT32(1);
        float v = (float)i;
        memcpy(b + n, &v, 4);
        n += 4;
    }
#undef PUT32
    qp_imatrix *m = NULL;
    qp_err err;
    assert_int_equal(qp_imatrix_read_memory(b, n, "many.dat", &m, &err), QP_OK);
    assert_int_equal(qp_imatrix_count(m), N);
    assert_int_equal(qp_imatrix_find(m, "e77777"), 77777);
    assert_int_equal(qp_imatrix_find(m, "e100000"), -1);
    float v;
    assert_int_equal(qp_imatrix_mean(m, qp_imatrix_find(m, "e4242"), 0, &v), 1);
    assert_true(v == 4242.0f);
    qp_imatrix *c = qp_imatrix_new();
    assert_int_equal(qp_imatrix_merge(c, m, &err), QP_OK);
    assert_int_equal(qp_imatrix_merge(c, m, &err), QP_OK);
    assert_true(qp_imatrix_rows(c, 99999, 0) == 2.0 * QP_IMATRIX_LEGACY_CHUNK_SIZE);
    qp_imatrix_free(c);
    qp_imatrix_free(m);
    free(b);
}

static int32_t le32(const uint8_t *p)
{
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static void test_legacy_roundtrip(void **state)
{
    (void)state;
    qp_imatrix *m = read_ok(qp_fixture(MOE));
    const char *dat = tmp_path("moe.dat"), *dat2 = tmp_path("moe2.dat");
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_imatrix_write_legacy(m, dat, &err), QP_OK);
    /* The layout, by hand: entry count, then the first entry (sorted). */
    size_t n;
    uint8_t *b = qp_test_read_file(dat, &n);
    assert_int_equal(le32(b), 32);
    assert_int_equal(le32(b + 4), (int32_t)strlen("blk.0.attn_k.weight"));
    assert_memory_equal(b + 8, "blk.0.attn_k.weight", 19);
    assert_int_equal(le32(b + 27), 114); /* ncall = 58368 rows / 512 */
    assert_int_equal(le32(b + 31), 256); /* nval */
    qp_imatrix *r = read_ok(dat);
    assert_int_equal(qp_imatrix_source_format(r), QP_IMATRIX_FORMAT_LEGACY);
    assert_int_equal(qp_imatrix_count(r), 32);
    assert_int_equal(qp_imatrix_chunk_count(r), 114);
    assert_int_equal(qp_imatrix_chunk_size(r), QP_IMATRIX_LEGACY_CHUNK_SIZE);
    assert_string_equal(qp_imatrix_dataset(r, 0), qp_imatrix_dataset(m, 0));
    for (int64_t i = 0; i < qp_imatrix_count(m); i++) {
        int64_t k = qp_imatrix_find(r, qp_imatrix_name(m, i));
        assert_true(k >= 0);
        /* The legacy format has no expert split: one flat vector. */
        int64_t n_in = qp_imatrix_n_in(m, i), n_exp = qp_imatrix_n_expert(m, i);
        assert_int_equal(qp_imatrix_n_expert(r, k), 1);
        assert_int_equal(qp_imatrix_n_in(r, k), n_in * n_exp);
        float *flat = malloc((size_t)(n_in * n_exp) * sizeof *flat), mine[256];
        assert_int_equal(qp_imatrix_mean(r, k, 0, flat), 1);
        for (int64_t xe = 0; xe < n_exp; xe++) {
            if (!qp_imatrix_mean(m, i, xe, mine)) {
                for (int64_t j = 0; j < n_in; j++) /* no data: llama.cpp stores 1 */
                    assert_true(flat[xe * n_in + j] == 1.0f);
                continue;
            }
            for (int64_t j = 0; j < n_in; j++)
                assert_true(fabsf(flat[xe * n_in + j] - mine[j]) <= 4e-7f * mine[j]);
        }
        free(flat);
    }
    /* Reading and rewriting a legacy file gives back its bytes. */
    assert_int_equal(qp_imatrix_write_legacy(r, dat2, &err), QP_OK);
    size_t n2;
    uint8_t *b2 = qp_test_read_file(dat2, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    /* And a legacy matrix converts to GGUF and back. */
    const char *g = tmp_path("from-dat.gguf");
    assert_int_equal(qp_imatrix_write(r, g, &err), QP_OK);
    qp_imatrix *r2 = read_ok(g);
    assert_int_equal(qp_imatrix_count(r2), 32);
    assert_int_equal(qp_imatrix_chunk_count(r2), 114);
    for (int64_t i = 0; i < qp_imatrix_count(r); i++)
        assert_memory_equal(qp_imatrix_sums(r, i), qp_imatrix_sums(r2, i),
                            (size_t)qp_imatrix_n_in(r, i) * sizeof(float));
    qp_imatrix_free(r2);
    free(b);
    free(b2);
    qp_imatrix_free(r);
    qp_imatrix_free(m);
}

/* ---------------------------------------------------------------- hostile legacy files */

typedef struct {
    uint8_t b[512];
    size_t n;
} dat_buf;

static void put32(dat_buf *d, int32_t v)
{
    uint32_t u = (uint32_t)v;
    for (int i = 0; i < 4; i++)
        d->b[d->n++] = (uint8_t)(u >> (8 * i));
}

static void putf(dat_buf *d, float f)
{
    int32_t v;
    memcpy(&v, &f, 4);
    put32(d, v);
}

static void putname(dat_buf *d, const char *s)
{
    put32(d, (int32_t)strlen(s));
    memcpy(d->b + d->n, s, strlen(s));
    d->n += strlen(s);
}

/* Two entries "w.a" (ncall 2, 3 values) and "w.b" (ncall 0, 1 value), then
 * last_call and dataset "cal". Offsets of the pieces go to *ends. */
static void good_dat(dat_buf *d, size_t *entries_end, size_t *last_end)
{
    d->n = 0;
    put32(d, 2);
    putname(d, "w.a");
    put32(d, 2);
    put32(d, 3);
    putf(d, 2.0f);
    putf(d, 0.5f);
    putf(d, 0.0f);
    putname(d, "w.b");
    put32(d, 0);
    put32(d, 1);
    putf(d, 7.0f);
    *entries_end = d->n;
    put32(d, 9);
    *last_end = d->n;
    putname(d, "cal");
}

static qp_status read_mem(const dat_buf *d, size_t n, qp_imatrix **m, qp_err *err)
{
    /* An exactly sized heap copy, so ASan catches any over-read. */
    void *copy = malloc(n ? n : 1);
    memcpy(copy, d->b, n);
    qp_err_clear(err);
    qp_status s = qp_imatrix_read_memory(copy, n, "hostile.dat", m, err);
    free(copy);
    return s;
}

static void expect_bad_dat(const dat_buf *d, const char *word)
{
    qp_imatrix *m = NULL;
    qp_err err;
    char msg[2048];
    qp_status s = read_mem(d, d->n, &m, &err);
    qp_err_format(&err, msg, sizeof msg);
    if (s != QP_ERR_BAD_INPUT || !strstr(msg, "hostile.dat") || !strstr(msg, word))
        fail_msg("status %s, message \"%s\", expected \"%s\"", qp_status_name(s), msg, word);
    assert_null(m);
}

static void test_legacy_parse(void **state)
{
    (void)state;
    dat_buf d;
    size_t e_end, l_end;
    good_dat(&d, &e_end, &l_end);
    qp_imatrix *m = NULL;
    qp_err err;
    assert_int_equal(read_mem(&d, d.n, &m, &err), QP_OK);
    assert_int_equal(qp_imatrix_count(m), 2);
    float v[3];
    assert_int_equal(qp_imatrix_mean(m, 0, 0, v), 1);
    assert_true(v[0] == 1.0f && v[1] == 0.25f && v[2] == 0.0f); /* values / ncall */
    assert_int_equal(qp_imatrix_mean(m, 1, 0, v), 1);
    assert_true(v[0] == 7.0f); /* ncall 0: values are the means */
    assert_int_equal(qp_imatrix_chunk_count(m), 9);
    assert_string_equal(qp_imatrix_dataset(m, 0), "cal");
    qp_imatrix_free(m);
    /* Every prefix fails cleanly, except where the trailer may stop. */
    for (size_t n = 0; n < d.n; n++) {
        m = NULL;
        qp_status s = read_mem(&d, n, &m, &err);
        if (n == e_end || n == l_end) {
            assert_int_equal(s, QP_OK);
            assert_int_equal(qp_imatrix_chunk_count(m), n == e_end ? 0 : 9);
            qp_imatrix_free(m);
        } else {
            assert_int_equal(s, QP_ERR_BAD_INPUT);
            assert_null(m);
        }
    }
    dat_buf h = d;
    put32(&h, 0); /* trailing garbage */
    expect_bad_dat(&h, "trailing");
    h = d;
    h.b[0] = 0; /* no entries */
    expect_bad_dat(&h, "entry count");
    h = d;
    h.b[0] = 0xff, h.b[1] = 0xff, h.b[2] = 0xff, h.b[3] = 0x7f;
    expect_bad_dat(&h, "entry count");
    h = d;
    h.b[4] = 0xf0; /* name length past the end */
    expect_bad_dat(&h, "name length");
    h = d;
    h.b[9] = '\n';
    expect_bad_dat(&h, "control byte");
    h = d;
    h.b[11] = 0xff, h.b[12] = 0xff, h.b[13] = 0xff, h.b[14] = 0xff; /* ncall -1 */
    expect_bad_dat(&h, "negative call count");
    h = d;
    memset(h.b + 15, 0, 4); /* nval 0 */
    expect_bad_dat(&h, "value count");
    h = d;
    h.b[18] = 0x40; /* nval huge */
    expect_bad_dat(&h, "value count");
    h = d;
    float bad[] = {NAN, INFINITY, -1.0f, 1e38f};
    for (int k = 0; k < 4; k++) {
        h = d;
        memcpy(h.b + 23, &bad[k], 4);
        expect_bad_dat(&h, "not a finite non-negative");
    }
    h = d;
    memcpy(h.b + 35, "w.a", 3); /* duplicate name */
    expect_bad_dat(&h, "duplicate");
    h = d;
    h.b[l_end] = 0x50; /* dataset length past the end */
    expect_bad_dat(&h, "dataset name length");
    h = d;
    h.b[e_end + 3] = 0x80; /* negative chunk count */
    expect_bad_dat(&h, "negative chunk count");
    h.n = 2;
    expect_bad_dat(&h, "neither GGUF");
}

/* ---------------------------------------------------------------- hostile GGUF files */

typedef struct {
    const char *type;        /* general.type, NULL: omit */
    int no_datasets, no_chunk_count, counts_f16, three_d;
    int64_t counts_ne1;      /* experts in the counts tensor */
    float sum0, count0;      /* first sum / count value */
    int drop_counts, drop_sums, only_other, in_sum_bad_shape, long_name;
} spec;

static void default_spec(spec *s)
{
    memset(s, 0, sizeof *s);
    s->type = "imatrix";
    s->counts_ne1 = 2;
    s->sum0 = 1.0f;
    s->count0 = 5.0f;
}

/* An imatrix-like GGUF with entry "blk.0.ffn_up_exps.weight" [4, 2]. */
static const char *build(const spec *s, const char *file)
{
    const char *path = tmp_path(file);
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    qp_gguf_writer_set_checksums(w, 0);
    if (s->type)
        qp_gguf_set_str(w, "general.type", s->type);
    const char *ds[] = {"calib.txt"};
    if (!s->no_datasets)
        qp_gguf_set_arr_str(w, "imatrix.datasets", ds, NULL, 1);
    if (!s->no_chunk_count)
        qp_gguf_set_u32(w, "imatrix.chunk_count", 3);
    qp_gguf_set_u32(w, "imatrix.chunk_size", 512);
    const char *base = s->long_name ? "blk.0.a_very_long_tensor_name_that_llama_cpp_cannot_hold.weight"
                                    : "blk.0.ffn_up_exps.weight";
    char name[256];
    int64_t ne_s[3] = {4, 2, 1}, ne_c[2] = {1, s->counts_ne1};
    float sums[8] = {s->sum0, 2, 3, 4, 5, 6, 7, 8}, counts[4] = {s->count0, 1, 1, 1};
    uint16_t counts16[4] = {0x3c00, 0x3c00, 0x3c00, 0x3c00};
    int64_t is = -1, ic = -1, ix = -1, io = -1;
    if (!s->drop_sums && !s->only_other) {
        snprintf(name, sizeof name, "%s.in_sum2", base);
        is = qp_gguf_add_tensor(w, name, s->three_d ? 3 : 2, ne_s, QP_GGML_F32, NULL);
    }
    if (!s->drop_counts && !s->only_other) {
        snprintf(name, sizeof name, "%s.counts", base);
        ic = qp_gguf_add_tensor(w, name, 2, ne_c, s->counts_f16 ? QP_GGML_F16 : QP_GGML_F32, NULL);
    }
    if (s->in_sum_bad_shape) {
        int64_t ne_x[2] = {8, 1};
        snprintf(name, sizeof name, "%s.in_sum", base);
        ix = qp_gguf_add_tensor(w, name, 1, ne_x, QP_GGML_F32, NULL);
    }
    if (s->only_other) {
        int64_t ne_o[1] = {4};
        io = qp_gguf_add_tensor(w, "token_embd.weight", 1, ne_o, QP_GGML_F32, NULL);
    }
    assert_int_equal(qp_gguf_writer_begin(w, NULL), QP_OK);
    if (is >= 0)
        qp_gguf_write_tensor(w, is, 0, sums, sizeof sums, NULL);
    if (ic >= 0)
        qp_gguf_write_tensor(w, ic, 0, s->counts_f16 ? (const void *)counts16 : (const void *)counts,
                             (size_t)s->counts_ne1 * (s->counts_f16 ? 2 : 4), NULL);
    if (ix >= 0)
        qp_gguf_write_tensor(w, ix, 0, sums, sizeof sums, NULL);
    if (io >= 0)
        qp_gguf_write_tensor(w, io, 0, sums, 16, NULL);
    assert_int_equal(qp_gguf_writer_finish(w, NULL), QP_OK);
    qp_gguf_writer_free(w);
    return path;
}

static void expect_bad_gguf(const spec *s, const char *word, const char *tensor)
{
    static int n;
    char file[64];
    snprintf(file, sizeof file, "bad-%d.gguf", ++n);
    const char *path = build(s, file);
    qp_imatrix *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    char msg[2048];
    qp_status st = qp_imatrix_read(path, &m, &err);
    qp_err_format(&err, msg, sizeof msg);
    if (st != QP_ERR_BAD_INPUT || !strstr(msg, path) || !strstr(msg, word) || (tensor && !strstr(msg, tensor)))
        fail_msg("%s: status %s, message \"%s\", expected \"%s\" / %s", file, qp_status_name(st), msg, word,
                 tensor ? tensor : "-");
    assert_null(m);
}

static void test_gguf_malformed(void **state)
{
    (void)state;
    spec s;
    default_spec(&s);
    qp_imatrix *m = read_ok(build(&s, "good.gguf"));
    assert_int_equal(qp_imatrix_n_expert(m, 0), 2);
    qp_imatrix_free(m);
    const char *T = "blk.0.ffn_up_exps.weight";
    default_spec(&s), s.type = "model";
    expect_bad_gguf(&s, "not 'imatrix'", NULL);
    default_spec(&s), s.no_datasets = 1;
    expect_bad_gguf(&s, "imatrix.datasets", NULL);
    default_spec(&s), s.no_chunk_count = 1;
    expect_bad_gguf(&s, "imatrix.chunk_count", NULL);
    default_spec(&s), s.drop_counts = 1;
    expect_bad_gguf(&s, "no counts", T);
    default_spec(&s), s.drop_sums = 1;
    expect_bad_gguf(&s, "no in_sum2", T);
    default_spec(&s), s.counts_ne1 = 1;
    expect_bad_gguf(&s, "counts has shape [1, 1]", T);
    default_spec(&s), s.counts_f16 = 1;
    expect_bad_gguf(&s, "must be F32", T);
    default_spec(&s), s.three_d = 1;
    expect_bad_gguf(&s, "more than 2 dimensions", T);
    default_spec(&s), s.sum0 = NAN;
    expect_bad_gguf(&s, "not a finite non-negative", "in_sum2");
    default_spec(&s), s.sum0 = -1;
    expect_bad_gguf(&s, "not a finite non-negative", "in_sum2");
    default_spec(&s), s.count0 = -2;
    expect_bad_gguf(&s, "count of expert 0", "counts");
    default_spec(&s), s.count0 = INFINITY;
    expect_bad_gguf(&s, "count of expert 0", "counts");
    default_spec(&s), s.only_other = 1;
    expect_bad_gguf(&s, "no importance data", NULL);
    default_spec(&s), s.in_sum_bad_shape = 1;
    expect_bad_gguf(&s, "differ in shape", "in_sum");
    default_spec(&s), s.long_name = 1;
    expect_bad_gguf(&s, "more than llama.cpp's", NULL);
    /* A model file is not an importance matrix. */
    qp_imatrix *mm = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_imatrix_read(qp_fixture("llama-cpp-quantized/qwen3-tiny-Q2_K.gguf"), &mm, &err),
                     QP_ERR_BAD_INPUT);
    assert_null(mm);
    assert_int_equal(qp_imatrix_read(tmp_path("does-not-exist"), &mm, &err), QP_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_dense),
        cmocka_unit_test(test_read_moe),
        cmocka_unit_test(test_write_roundtrip_dense),
        cmocka_unit_test(test_write_roundtrip_moe),
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_chunk_sizes),
        cmocka_unit_test(test_accumulate_threads),
        cmocka_unit_test(test_many_entries),
        cmocka_unit_test(test_legacy_roundtrip),
        cmocka_unit_test(test_legacy_parse),
        cmocka_unit_test(test_gguf_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
