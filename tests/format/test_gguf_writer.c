/* test_gguf_writer.c - the streaming writer, checked through the reader:
 * every value type, tensors of several ggml types written in pieces in
 * random order from two threads, byte-identical output for any write order,
 * checksums (streamed and read back) that catch a flipped byte, and clean
 * failure: abort, incomplete tensors, a file-size limit (EFBIG, as ENOSPC). */
/* ctest-labels: fast threads */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "support/qp_test.h"

static char *g_tmp;

static int setup(void **state)
{
    (void)state;
    g_tmp = qp_test_tmpdir("gguf-writer");
    return g_tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_tmp);
    free(g_tmp);
    return 0;
}

static const char *tmp_file(const char *name)
{
    static char bufs[4][4200];
    static int slot;
    char *b = bufs[slot++ & 3];
    snprintf(b, 4200, "%s/%s", g_tmp, name);
    return b;
}

static void ok(qp_status st, const qp_err *err)
{
    if (st != QP_OK) {
        char msg[2048];
        qp_err_format(err, msg, sizeof msg);
        fail_msg("%s: %s", qp_status_name(st), msg);
    }
}

/* ---------------------------------------------------------------- the model */

typedef struct {
    const char *name;
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
} tdesc;

static const tdesc TENSORS[] = {
    {"token_embd.weight", 2, {256, 12, 1, 1}, QP_GGML_Q6_K},
    {"output_norm.weight", 1, {33, 1, 1, 1}, QP_GGML_F32},
    {"w.bf16", 3, {16, 5, 3, 1}, QP_GGML_BF16},
    {"w.q8_0", 2, {64, 7, 1, 1}, QP_GGML_Q8_0},
    {"w.q4_k", 2, {512, 3, 1, 1}, QP_GGML_Q4_K},
    {"w.f16.4d", 4, {7, 1, 1, 2}, QP_GGML_F16},
    {"w.iq4_nl", 2, {32, 9, 1, 1}, QP_GGML_IQ4_NL},
    {"w.i32", 1, {5, 1, 1, 1}, QP_GGML_I32},
    {"w.f64", 1, {3, 1, 1, 1}, QP_GGML_F64},
    {"big", 2, {4096, 64, 1, 1}, QP_GGML_F16},
};
#define N_T ((int)(sizeof TENSORS / sizeof *TENSORS))

static uint8_t *tensor_bytes(int i, uint64_t n)
{
    uint8_t *p = malloc(n);
    uint32_t x = 0x12345u + (uint32_t)i * 7919u;
    for (uint64_t j = 0; j < n; j++) {
        x = x * 1103515245u + 12345u;
        p[j] = (uint8_t)(x >> 16);
    }
    return p;
}

static const uint8_t A_U8[] = {0, 1, 255};
static const int8_t A_I8[] = {-128, 0, 127};
static const uint16_t A_U16[] = {0, 65535, 1234};
static const int16_t A_I16[] = {-32768, 32767};
static const uint32_t A_U32[] = {7, 0xffffffffu};
static const int32_t A_I32[] = {-1, 1, 2147483647};
static const float A_F32[] = {1.5f, -0.25f, 3.0e38f};
static const uint8_t A_BOOL[] = {1, 0, 1, 1};
static const uint64_t A_U64[] = {UINT64_MAX, 0, 42};
static const int64_t A_I64[] = {INT64_MIN, INT64_MAX};
static const double A_F64[] = {3.141592653589793, -1e300};
static const char *const STRS[] = {"hello", "", "wörld", "a\0b", "<|im_end|>"};
static const size_t STR_LENS[] = {5, 0, 6, 3, 10};

static void declare(qp_gguf_writer *w)
{
    qp_err err;
    assert_int_equal(qp_gguf_set_str(w, "general.architecture", "qwen3"), QP_OK);
    assert_int_equal(qp_gguf_set_str(w, "general.name", "old name"), QP_OK);
    assert_int_equal(qp_gguf_set_u8(w, "t.u8", 200), QP_OK);
    assert_int_equal(qp_gguf_set_i8(w, "t.i8", -100), QP_OK);
    assert_int_equal(qp_gguf_set_u16(w, "t.u16", 60000), QP_OK);
    assert_int_equal(qp_gguf_set_i16(w, "t.i16", -30000), QP_OK);
    assert_int_equal(qp_gguf_set_u32(w, "t.u32", 4000000000u), QP_OK);
    assert_int_equal(qp_gguf_set_i32(w, "t.i32", -2000000000), QP_OK);
    assert_int_equal(qp_gguf_set_f32(w, "t.f32", 1e-6f), QP_OK);
    assert_int_equal(qp_gguf_set_bool(w, "t.bool", 5), QP_OK);
    assert_int_equal(qp_gguf_set_u64(w, "t.u64", UINT64_MAX - 1), QP_OK);
    assert_int_equal(qp_gguf_set_i64(w, "t.i64", INT64_MIN + 3), QP_OK);
    assert_int_equal(qp_gguf_set_f64(w, "t.f64", -2.5e-300), QP_OK);
    assert_int_equal(qp_gguf_set_strn(w, "t.strn", "ab\0cd", 5), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.u8", QP_GGUF_U8, A_U8, 3), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.i8", QP_GGUF_I8, A_I8, 3), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.u16", QP_GGUF_U16, A_U16, 3), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.i16", QP_GGUF_I16, A_I16, 2), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.u32", QP_GGUF_U32, A_U32, 2), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.i32", QP_GGUF_I32, A_I32, 3), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.f32", QP_GGUF_F32, A_F32, 3), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.bool", QP_GGUF_BOOL, A_BOOL, 4), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.u64", QP_GGUF_U64, A_U64, 3), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.i64", QP_GGUF_I64, A_I64, 2), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.f64", QP_GGUF_F64, A_F64, 2), QP_OK);
    assert_int_equal(qp_gguf_set_arr(w, "a.empty", QP_GGUF_U32, NULL, 0), QP_OK);
    assert_int_equal(qp_gguf_set_arr_str(w, "a.str", STRS, STR_LENS, 5), QP_OK);
    assert_int_equal(qp_gguf_set_arr_str(w, "a.strz", STRS, NULL, 3), QP_OK);
    /* Replacing keeps the slot (index 1) but takes the new value and type. */
    assert_int_equal(qp_gguf_set_str(w, "general.name", "Qwen3 Tiny"), QP_OK);
    assert_int_equal(qp_gguf_set_u32(w, "t.u8", 201), QP_OK);
    for (int i = 0; i < N_T; i++) {
        const tdesc *t = &TENSORS[i];
        assert_int_equal(qp_gguf_add_tensor(w, t->name, t->n_dims, t->ne, t->type, &err), i);
    }
}

static void check_values(const qp_gguf *g)
{
    static const char *const order[] = {
        "general.architecture", "general.name", "t.u8", "t.i8", "t.u16", "t.i16", "t.u32",
        "t.i32", "t.f32", "t.bool", "t.u64", "t.i64", "t.f64", "t.strn", "a.u8", "a.i8",
        "a.u16", "a.i16", "a.u32", "a.i32", "a.f32", "a.bool", "a.u64", "a.i64", "a.f64",
        "a.empty", "a.str", "a.strz"};
    int n = (int)(sizeof order / sizeof *order);
    assert_int_equal(qp_gguf_version(g), 3);
    assert_int_equal(qp_gguf_kv_count(g), n + 1); /* + qpack.tensor_xxh3 */
    for (int i = 0; i < n; i++) {
        qp_gguf_str k = qp_gguf_kv_key(g, i);
        assert_int_equal(k.len, strlen(order[i]));
        assert_memory_equal(k.ptr, order[i], k.len);
    }
    qp_gguf_str s;
    assert_true(qp_gguf_get_str(g, "general.name", &s));
    assert_int_equal(s.len, 10);
    assert_memory_equal(s.ptr, "Qwen3 Tiny", 10);
    assert_true(qp_gguf_get_str(g, "t.strn", &s));
    assert_int_equal(s.len, 5);
    assert_memory_equal(s.ptr, "ab\0cd", 5);

    struct { const char *key; qp_gguf_vtype type; int64_t v; } ints[] = {
        {"t.u8", QP_GGUF_U32, 201}, {"t.i8", QP_GGUF_I8, -100}, {"t.u16", QP_GGUF_U16, 60000},
        {"t.i16", QP_GGUF_I16, -30000}, {"t.u32", QP_GGUF_U32, 4000000000ll},
        {"t.i32", QP_GGUF_I32, -2000000000}, {"t.bool", QP_GGUF_BOOL, 1},
        {"t.i64", QP_GGUF_I64, INT64_MIN + 3},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        int64_t k = qp_gguf_find_key(g, ints[i].key), v = 0;
        assert_int_equal(qp_gguf_kv_type(g, k), ints[i].type);
        assert_true(qp_gguf_kv_as_i64(g, k, &v));
        assert_int_equal(v, ints[i].v);
    }
    int64_t k = qp_gguf_find_key(g, "t.u64"), iv;
    uint64_t u = 0;
    assert_true(qp_gguf_kv_as_u64(g, k, &u));
    assert_true(u == UINT64_MAX - 1);
    assert_false(qp_gguf_kv_as_i64(g, k, &iv)); /* not representable */
    assert_false(qp_gguf_kv_as_u64(g, qp_gguf_find_key(g, "t.i8"), &u)); /* negative */
    double d = 0;
    assert_true(qp_gguf_get_f64(g, "t.f32", &d));
    assert_true(d == (double)1e-6f);
    assert_false(qp_gguf_kv_as_u64(g, qp_gguf_find_key(g, "t.f32"), &u)); /* fraction */
    assert_true(qp_gguf_get_f64(g, "t.f64", &d));
    assert_true(d == -2.5e-300);

    struct { const char *key; qp_gguf_vtype type; const void *data; uint64_t n; } arrs[] = {
        {"a.u8", QP_GGUF_U8, A_U8, 3}, {"a.i8", QP_GGUF_I8, A_I8, 3},
        {"a.u16", QP_GGUF_U16, A_U16, 3}, {"a.i16", QP_GGUF_I16, A_I16, 2},
        {"a.u32", QP_GGUF_U32, A_U32, 2}, {"a.i32", QP_GGUF_I32, A_I32, 3},
        {"a.f32", QP_GGUF_F32, A_F32, 3}, {"a.bool", QP_GGUF_BOOL, A_BOOL, 4},
        {"a.u64", QP_GGUF_U64, A_U64, 3}, {"a.i64", QP_GGUF_I64, A_I64, 2},
        {"a.f64", QP_GGUF_F64, A_F64, 2}, {"a.empty", QP_GGUF_U32, NULL, 0},
    };
    for (size_t i = 0; i < sizeof arrs / sizeof *arrs; i++) {
        k = qp_gguf_find_key(g, arrs[i].key);
        assert_int_equal(qp_gguf_kv_type(g, k), QP_GGUF_ARRAY);
        assert_int_equal(qp_gguf_arr_type(g, k), arrs[i].type);
        assert_int_equal(qp_gguf_arr_len(g, k), arrs[i].n);
        if (arrs[i].n)
            assert_memory_equal(qp_gguf_arr_data(g, k), arrs[i].data,
                                arrs[i].n * qp_gguf_vtype_size(arrs[i].type));
    }
    k = qp_gguf_find_key(g, "a.str");
    assert_int_equal(qp_gguf_arr_len(g, k), 5);
    for (uint64_t j = 0; j < 5; j++) {
        qp_gguf_str e = qp_gguf_arr_str(g, k, j);
        assert_int_equal(e.len, STR_LENS[j]);
        if (STR_LENS[j])
            assert_memory_equal(e.ptr, STRS[j], STR_LENS[j]);
    }
    k = qp_gguf_find_key(g, "a.strz");
    assert_int_equal(qp_gguf_arr_len(g, k), 3);
    assert_int_equal(qp_gguf_arr_str(g, k, 2).len, 6); /* strlen("wörld") */
}

static void check_tensors(const qp_gguf *g)
{
    assert_int_equal(qp_gguf_tensor_count(g), N_T);
    uint64_t prev_end = 0;
    for (int i = 0; i < N_T; i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        assert_int_equal(t->name.len, strlen(TENSORS[i].name));
        assert_memory_equal(t->name.ptr, TENSORS[i].name, t->name.len);
        assert_int_equal(t->n_dims, TENSORS[i].n_dims);
        for (int d = 0; d < 4; d++)
            assert_int_equal(t->ne[d], TENSORS[i].ne[d]);
        assert_int_equal(t->type, TENSORS[i].type);
        assert_int_equal(t->offset % 32, 0);
        /* Declaration order, tightly packed up to the alignment, zero gaps. */
        assert_true(t->offset >= prev_end && t->offset - prev_end < 32);
        const uint8_t *base = (const uint8_t *)t->data - t->offset;
        for (uint64_t j = prev_end; j < t->offset; j++)
            assert_int_equal(base[j], 0);
        prev_end = t->offset + t->nbytes;
        uint8_t *want = tensor_bytes(i, t->nbytes);
        assert_memory_equal(t->data, want, t->nbytes);
        free(want);
    }
    assert_int_equal(qp_gguf_data_offset(g) % 32, 0);
    assert_int_equal(qp_gguf_file_size(g) % 32, 0);
    assert_true(qp_gguf_file_size(g) - qp_gguf_data_offset(g) - prev_end < 32);
}

/* ---------------------------------------------------------------- writing */

typedef struct {
    int tensor;
    uint64_t off, n;
} piece;

typedef struct {
    qp_gguf_writer *w;
    piece *pieces;
    int n_pieces, tid, n_threads;
    uint8_t **data;
    qp_status st;
} worker;

static void *work(void *arg)
{
    worker *k = arg;
    qp_err err;
    for (int p = k->tid; p < k->n_pieces && !k->st; p += k->n_threads) {
        const piece *pc = &k->pieces[p];
        k->st = qp_gguf_write_tensor(k->w, pc->tensor, pc->off, k->data[pc->tensor] + pc->off,
                                     (size_t)pc->n, &err);
    }
    return NULL;
}

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Write the model to `path`. order: 0 in order, 1 shuffled, 2 reversed;
 * pieces of random length; n_threads writers. */
static void write_model(const char *path, int order, int n_threads, uint64_t seed)
{
    qp_err err;
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    assert_non_null(w);
    declare(w);
    ok(qp_gguf_writer_begin(w, &err), &err);
    assert_true(qp_test_file_exists(qp_gguf_writer_temp_path(w)));
    assert_false(qp_test_file_exists(path));

    uint8_t *data[N_T];
    piece *pieces = NULL;
    int n = 0, cap = 0;
    for (int i = 0; i < N_T; i++) {
        uint64_t nb = qp_gguf_writer_tensor_nbytes(w, i);
        data[i] = tensor_bytes(i, nb);
        for (uint64_t off = 0; off < nb;) {
            uint64_t len = 1 + rnd(&seed) % (nb / 3 + 1);
            if (len > nb - off)
                len = nb - off;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                pieces = realloc(pieces, (size_t)cap * sizeof *pieces);
            }
            pieces[n++] = (piece){i, off, len};
            off += len;
        }
    }
    if (order == 1) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rnd(&seed) % (uint64_t)(i + 1));
            piece t = pieces[i];
            pieces[i] = pieces[j];
            pieces[j] = t;
        }
    } else if (order == 2) {
        for (int i = 0; i < n / 2; i++) {
            piece t = pieces[i];
            pieces[i] = pieces[n - 1 - i];
            pieces[n - 1 - i] = t;
        }
    }
    worker k[4];
    pthread_t th[4];
    for (int t = 0; t < n_threads; t++) {
        k[t] = (worker){w, pieces, n, t, n_threads, data, QP_OK};
        assert_int_equal(pthread_create(&th[t], NULL, work, &k[t]), 0);
    }
    for (int t = 0; t < n_threads; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(k[t].st, QP_OK);
    }
    ok(qp_gguf_writer_finish(w, &err), &err);
    assert_false(qp_test_file_exists(qp_gguf_writer_temp_path(w)));
    assert_true(qp_test_file_exists(path));
    qp_gguf_writer_free(w);
    for (int i = 0; i < N_T; i++)
        free(data[i]);
    free(pieces);
}

static qp_gguf *open_ok(const char *path)
{
    qp_gguf *g = NULL;
    qp_err err;
    ok(qp_gguf_open(path, &g, &err), &err);
    return g;
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *path = tmp_file("rt.gguf");
    write_model(path, 1, 2, 1);
    qp_gguf *g = open_ok(path);
    check_values(g);
    check_tensors(g);
    qp_err err;
    ok(qp_gguf_verify_checksums(g, &err), &err);
    /* The stored sums are the xxh3 of each tensor's bytes, file order. */
    int64_t k = qp_gguf_find_key(g, QP_GGUF_CHECKSUM_KEY);
    assert_int_equal(k, qp_gguf_kv_count(g) - 1);
    assert_int_equal(qp_gguf_arr_type(g, k), QP_GGUF_U64);
    assert_int_equal(qp_gguf_arr_len(g, k), N_T);
    for (int i = 0; i < N_T; i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        uint64_t want = qp_checksum_xxh3(t->data, t->nbytes), got;
        memcpy(&got, (const uint8_t *)qp_gguf_arr_data(g, k) + 8 * i, 8);
        assert_true(got == want);
        assert_true(want != 0);
    }
    qp_gguf_close(g);
}

static void test_identical_for_any_order(void **state)
{
    (void)state;
    const char *a = tmp_file("in-order.gguf"), *b = tmp_file("shuffled.gguf");
    const char *c = tmp_file("reversed.gguf"), *d = tmp_file("in-order-2.gguf");
    write_model(a, 0, 1, 7);  /* all tensors streamed */
    write_model(b, 1, 2, 8);  /* mostly read back, other cut points */
    write_model(c, 2, 2, 9);
    write_model(d, 0, 2, 10); /* contiguous pieces racing between threads */
    size_t na, nb, nc, nd;
    void *pa = qp_test_read_file(a, &na), *pb = qp_test_read_file(b, &nb);
    void *pc = qp_test_read_file(c, &nc), *pd = qp_test_read_file(d, &nd);
    assert_int_equal(na, nb);
    assert_int_equal(na, nc);
    assert_int_equal(na, nd);
    assert_memory_equal(pa, pb, na);
    assert_memory_equal(pa, pc, na);
    assert_memory_equal(pa, pd, na);
    free(pa);
    free(pb);
    free(pc);
    free(pd);
}

static void test_flipped_byte_is_reported(void **state)
{
    (void)state;
    const char *path = tmp_file("flip.gguf");
    write_model(path, 1, 2, 3);
    qp_gguf *g = open_ok(path);
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, "w.q8_0");
    uint64_t at = qp_gguf_data_offset(g) + t->offset + 100;
    uint8_t byte = ((const uint8_t *)t->data)[100] ^ 0x10;
    qp_gguf_close(g);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)at), 1);
    close(fd);
    g = open_ok(path);
    qp_err err;
    char msg[2048];
    assert_int_equal(qp_gguf_verify_checksums(g, &err), QP_ERR_BAD_INPUT);
    qp_err_format(&err, msg, sizeof msg);
    assert_string_equal(err.tensor, "w.q8_0");
    assert_non_null(strstr(msg, "w.q8_0"));
    assert_non_null(strstr(msg, "checksum"));
    assert_non_null(strstr(msg, path));
    qp_gguf_close(g);
}

/* A tensor written front to back is hashed from the caller's buffers as it
 * streams; one written out of order is hashed from the file at finish. Seen
 * from outside: bytes changed in the temp file behind the writer's back
 * are caught only for the streamed tensor. */
static void test_streamed_versus_read_back(void **state)
{
    (void)state;
    const char *path = tmp_file("paths.gguf");
    qp_err err;
    int64_t ne[1] = {256};
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    assert_int_equal(qp_gguf_add_tensor(w, "streamed", 1, ne, QP_GGML_F32, &err), 0);
    assert_int_equal(qp_gguf_add_tensor(w, "shuffled", 1, ne, QP_GGML_F32, &err), 1);
    ok(qp_gguf_writer_begin(w, &err), &err);
    uint8_t *d = tensor_bytes(5, 1024);
    for (int p = 0; p < 4; p++)
        ok(qp_gguf_write_tensor(w, 0, 256 * (uint64_t)p, d + 256 * p, 256, &err), &err);
    for (int p = 3; p >= 0; p--)
        ok(qp_gguf_write_tensor(w, 1, 256 * (uint64_t)p, d + 256 * p, 256, &err), &err);
    /* Find the data section through a reader on the (checksum-less so far)
     * temp file, then change one byte of each tensor in it. */
    qp_gguf *g = open_ok(qp_gguf_writer_temp_path(w));
    uint64_t at0 = qp_gguf_data_offset(g) + qp_gguf_tensor_at(g, 0)->offset + 7;
    uint64_t at1 = qp_gguf_data_offset(g) + qp_gguf_tensor_at(g, 1)->offset + 7;
    qp_gguf_close(g);
    int fd = open(qp_gguf_writer_temp_path(w), O_WRONLY);
    uint8_t x0 = d[7] ^ 1, x1 = d[7] ^ 2;
    assert_int_equal(pwrite(fd, &x0, 1, (off_t)at0), 1);
    assert_int_equal(pwrite(fd, &x1, 1, (off_t)at1), 1);
    close(fd);
    ok(qp_gguf_writer_finish(w, &err), &err);
    qp_gguf_writer_free(w);
    g = open_ok(path);
    assert_int_equal(qp_gguf_verify_checksums(g, &err), QP_ERR_BAD_INPUT);
    assert_string_equal(err.tensor, "streamed");
    uint64_t sums[2];
    memcpy(sums, qp_gguf_arr_data(g, qp_gguf_find_key(g, QP_GGUF_CHECKSUM_KEY)), 16);
    assert_true(sums[0] == qp_checksum_xxh3(d, 1024));
    assert_true(sums[1] == qp_checksum_xxh3(qp_gguf_tensor_at(g, 1)->data, 1024));
    qp_gguf_close(g);
    free(d);
}

/* ---------------------------------------------------------------- options */

static void test_checksums_off_and_alignment(void **state)
{
    (void)state;
    const char *path = tmp_file("aligned64.gguf");
    qp_err err;
    int64_t ne[2] = {32, 3};
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    qp_gguf_writer_set_checksums(w, 0);
    assert_int_equal(qp_gguf_set_u32(w, "general.alignment", 64), QP_OK);
    assert_int_equal(qp_gguf_add_tensor(w, "x", 1, ne, QP_GGML_F32, &err), 0);
    assert_int_equal(qp_gguf_add_tensor(w, "y", 2, ne, QP_GGML_Q8_0, &err), 1);
    ok(qp_gguf_writer_begin(w, &err), &err);
    uint8_t *x = tensor_bytes(0, 128), *y = tensor_bytes(1, 102);
    ok(qp_gguf_write_tensor(w, 1, 0, y, 102, &err), &err);
    ok(qp_gguf_write_tensor(w, 0, 0, x, 128, &err), &err);
    ok(qp_gguf_writer_finish(w, &err), &err);
    qp_gguf_writer_free(w);
    qp_gguf *g = open_ok(path);
    assert_int_equal(qp_gguf_alignment(g), 64);
    assert_int_equal(qp_gguf_data_offset(g) % 64, 0);
    assert_int_equal(qp_gguf_find_tensor(g, "y")->offset, 128);
    assert_memory_equal(qp_gguf_find_tensor(g, "y")->data, y, 102);
    assert_int_equal(qp_gguf_find_key(g, QP_GGUF_CHECKSUM_KEY), -1);
    assert_int_equal(qp_gguf_verify_checksums(g, &err), QP_ERR_NOT_FOUND);
    qp_gguf_close(g);
    free(x);
    free(y);

    /* An alignment that is not a power of two is refused at begin. */
    w = qp_gguf_writer_new(tmp_file("badalign.gguf"));
    assert_int_equal(qp_gguf_set_u32(w, "general.alignment", 48), QP_OK);
    assert_int_equal(qp_gguf_writer_begin(w, &err), QP_ERR_USAGE);
    assert_non_null(strstr(err.msg, "alignment"));
    assert_false(qp_test_file_exists(qp_gguf_writer_temp_path(w)));
    qp_gguf_writer_free(w);
}

static void test_empty_file(void **state)
{
    (void)state;
    const char *path = tmp_file("empty-model.gguf");
    qp_err err;
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    assert_int_equal(qp_gguf_set_str(w, "general.type", "vocab"), QP_OK);
    ok(qp_gguf_writer_begin(w, &err), &err);
    ok(qp_gguf_writer_finish(w, &err), &err);
    qp_gguf_writer_free(w);
    qp_gguf *g = open_ok(path);
    assert_int_equal(qp_gguf_tensor_count(g), 0);
    assert_int_equal(qp_gguf_kv_count(g), 2);
    ok(qp_gguf_verify_checksums(g, &err), &err);
    qp_gguf_close(g);
}

/* ---------------------------------------------------------------- misuse */

static void test_declaration_errors(void **state)
{
    (void)state;
    qp_err err;
    char msg[2048];
    qp_gguf_writer *w = qp_gguf_writer_new(tmp_file("errors.gguf"));
    int64_t ne[4] = {256, 2, 1, 1}, zero[2] = {256, 0}, odd[1] = {100};
    int64_t huge[2] = {INT64_MAX / 2, 4};
    assert_int_equal(qp_gguf_add_tensor(w, "a", 2, ne, QP_GGML_Q4_K, &err), 0);
    assert_int_equal(qp_gguf_add_tensor(w, "a", 2, ne, QP_GGML_F32, &err), -1);
    assert_int_equal(err.status, QP_ERR_BAD_INPUT);
    qp_err_format(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, "duplicate"));
    assert_string_equal(err.tensor, "a");
    assert_int_equal(qp_gguf_add_tensor(w, "b", 0, ne, QP_GGML_F32, &err), -1);
    assert_non_null(strstr(err.msg, "n_dims"));
    assert_int_equal(qp_gguf_add_tensor(w, "b", 5, ne, QP_GGML_F32, &err), -1);
    assert_int_equal(qp_gguf_add_tensor(w, "b", 2, zero, QP_GGML_F32, &err), -1);
    assert_non_null(strstr(err.msg, "dimension"));
    assert_int_equal(qp_gguf_add_tensor(w, "b", 1, odd, QP_GGML_Q4_K, &err), -1);
    assert_non_null(strstr(err.msg, "block size"));
    assert_int_equal(qp_gguf_add_tensor(w, "b", 2, ne, 4, &err), -1);
    assert_non_null(strstr(err.msg, "unknown ggml type"));
    assert_int_equal(qp_gguf_add_tensor(w, "b", 2, huge, QP_GGML_F32, &err), -1);
    assert_non_null(strstr(err.msg, "overflow"));
    assert_int_equal(qp_gguf_add_tensor(w, "", 2, ne, QP_GGML_F32, &err), -1);
    assert_int_equal(qp_gguf_add_tensor(w, "b", 2, ne, QP_GGML_F32, &err), 1);
    assert_int_equal(qp_gguf_writer_tensor_count(w), 2);
    assert_int_equal(qp_gguf_writer_tensor_nbytes(w, 0), 2 * 144);
    assert_int_equal(qp_gguf_writer_tensor_nbytes(w, 1), 2048);
    assert_int_equal(qp_gguf_writer_tensor_nbytes(w, 2), 0);
    assert_int_equal(qp_gguf_set_u32(w, "", 1), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_set_u32(w, NULL, 1), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_set_arr(w, QP_GGUF_CHECKSUM_KEY, QP_GGUF_U64, ne, 2), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_set_arr(w, "x", QP_GGUF_STRING, ne, 2), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_write_tensor(w, 0, 0, ne, 8, &err), QP_ERR_USAGE); /* not begun */
    assert_int_equal(qp_gguf_writer_finish(w, &err), QP_ERR_USAGE);

    ok(qp_gguf_writer_begin(w, &err), &err);
    assert_int_equal(qp_gguf_writer_begin(w, &err), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_set_u32(w, "late.key", 1), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_add_tensor(w, "late", 2, ne, QP_GGML_F32, &err), -1);
    assert_int_equal(err.status, QP_ERR_USAGE);
    uint8_t buf[300] = {0};
    assert_int_equal(qp_gguf_write_tensor(w, 2, 0, buf, 1, &err), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_write_tensor(w, -1, 0, buf, 1, &err), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_write_tensor(w, 0, 100, buf, 200, &err), QP_ERR_USAGE);
    assert_string_equal(err.tensor, "a");
    assert_int_equal(qp_gguf_write_tensor(w, 0, UINT64_MAX, buf, 2, &err), QP_ERR_USAGE);
    qp_gguf_writer_free(w); /* unfinished: removes the temp file */
    assert_false(qp_test_file_exists(tmp_file("errors.gguf.tmp")));
    assert_false(qp_test_file_exists(tmp_file("errors.gguf")));
    qp_gguf_writer_free(NULL);
    assert_null(qp_gguf_writer_new(NULL));
}

static qp_gguf_writer *small_writer(const char *path, uint8_t **data)
{
    qp_err err;
    int64_t ne[2] = {64, 4};
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    assert_int_equal(qp_gguf_add_tensor(w, "t0", 2, ne, QP_GGML_F32, &err), 0);
    assert_int_equal(qp_gguf_add_tensor(w, "t1", 2, ne, QP_GGML_F32, &err), 1);
    ok(qp_gguf_writer_begin(w, &err), &err);
    *data = tensor_bytes(0, 1024);
    return w;
}

static void test_abort_and_incomplete(void **state)
{
    (void)state;
    qp_err err;
    uint8_t *d;
    const char *path = tmp_file("abort.gguf");
    qp_gguf_writer *w = small_writer(path, &d);
    ok(qp_gguf_write_tensor(w, 0, 0, d, 1024, &err), &err);
    assert_true(qp_test_file_exists(qp_gguf_writer_temp_path(w)));
    qp_gguf_writer_abort(w);
    assert_false(qp_test_file_exists(qp_gguf_writer_temp_path(w)));
    qp_gguf_writer_abort(w); /* idempotent */
    assert_int_equal(qp_gguf_write_tensor(w, 1, 0, d, 16, &err), QP_ERR_USAGE);
    assert_int_equal(qp_gguf_writer_finish(w, &err), QP_ERR_USAGE);
    assert_false(qp_test_file_exists(path));
    qp_gguf_writer_free(w);
    free(d);

    /* A tensor left short fails finish, naming it; nothing is left behind. */
    w = small_writer(path, &d);
    ok(qp_gguf_write_tensor(w, 0, 0, d, 1024, &err), &err);
    ok(qp_gguf_write_tensor(w, 1, 0, d, 1000, &err), &err);
    assert_int_equal(qp_gguf_writer_finish(w, &err), QP_ERR_USAGE);
    assert_string_equal(err.tensor, "t1");
    assert_non_null(strstr(err.msg, "1000 of 1024"));
    assert_false(qp_test_file_exists(qp_gguf_writer_temp_path(w)));
    assert_false(qp_test_file_exists(path));
    qp_gguf_writer_free(w);
    free(d);

    /* The same bytes written twice (overlapping pieces) are caught too. */
    w = small_writer(path, &d);
    ok(qp_gguf_write_tensor(w, 0, 0, d, 1024, &err), &err);
    ok(qp_gguf_write_tensor(w, 1, 0, d, 1024, &err), &err);
    ok(qp_gguf_write_tensor(w, 1, 512, d, 512, &err), &err);
    assert_int_equal(qp_gguf_writer_finish(w, &err), QP_ERR_USAGE);
    assert_non_null(strstr(err.msg, "overlapping"));
    assert_false(qp_test_file_exists(path));
    qp_gguf_writer_free(w);
    free(d);

    /* An existing final file is replaced only by a finished write. */
    assert_int_equal(qp_test_write_file(path, "old", 3), 0);
    w = small_writer(path, &d);
    qp_gguf_writer_free(w);
    size_t n;
    char *old = qp_test_read_file(path, &n);
    assert_int_equal(n, 3);
    free(old);
    free(d);
}

/* ---------------------------------------------------------------- ENOSPC */

/* In a child: a file-size limit makes the kernel fail writes with EFBIG,
 * like a full disk. Exit code 0 = behaved as expected, else the failed step. */
static int child_size_limit(const char *path, int at_begin)
{
    qp_err err;
    struct rlimit rl;
    signal(SIGXFSZ, SIG_IGN);
    if (getrlimit(RLIMIT_FSIZE, &rl) != 0)
        return 10;
    if (at_begin) {
        rl.rlim_cur = 16384;
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            return 11;
    }
    int64_t ne[2] = {1024, 64}; /* 256 KiB of F32 */
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    if (qp_gguf_add_tensor(w, "t", 2, ne, QP_GGML_F32, &err) != 0)
        return 12;
    qp_status st = qp_gguf_writer_begin(w, &err);
    if (at_begin) {
        if (st != QP_ERR_IO || err.sys_errno != EFBIG || !strstr(err.path, ".tmp"))
            return 13;
    } else {
        if (st != QP_OK)
            return 14;
        rl.rlim_cur = 65536; /* the "disk" fills up after begin */
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            return 15;
        uint8_t *d = tensor_bytes(0, 65536);
        st = QP_OK;
        for (uint64_t off = 0; off < 262144 && st == QP_OK; off += 65536)
            st = qp_gguf_write_tensor(w, 0, off, d, 65536, &err);
        free(d);
        if (st != QP_ERR_IO || err.sys_errno != EFBIG || strcmp(err.tensor, "t") != 0 ||
            strcmp(err.path, qp_gguf_writer_temp_path(w)) != 0)
            return 16;
        if (qp_gguf_writer_finish(w, &err) != QP_ERR_IO)
            return 17;
    }
    if (qp_test_file_exists(qp_gguf_writer_temp_path(w)) || qp_test_file_exists(path))
        return 18;
    qp_gguf_writer_free(w);
    return 0;
}

static void test_file_size_limit(void **state)
{
    (void)state;
    for (int at_begin = 1; at_begin >= 0; at_begin--) {
        const char *path = tmp_file(at_begin ? "limit-begin.gguf" : "limit-write.gguf");
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            _exit(child_size_limit(path, at_begin));
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
            fail_msg("child (limit at %s) failed at step %d", at_begin ? "begin" : "write",
                     WEXITSTATUS(status));
        assert_false(qp_test_file_exists(path));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_identical_for_any_order),
        cmocka_unit_test(test_flipped_byte_is_reported),
        cmocka_unit_test(test_streamed_versus_read_back),
        cmocka_unit_test(test_checksums_off_and_alignment),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_declaration_errors),
        cmocka_unit_test(test_abort_and_incomplete),
        cmocka_unit_test(test_file_size_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
