/* test_gguf_malformed.c - hostile GGUF headers built with gguf_craft: every
 * validation rule of the reader, each rejected as QP_ERR_BAD_INPUT with a
 * message naming the file and the problem, never a crash (run under ASan:
 * images live in exactly sized heap blocks). */
/* ctest-labels: fast */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "support/gguf_craft.h"
#include "support/qp_test.h"

static char *g_tmp;
static int g_case;

static int setup(void **state)
{
    (void)state;
    g_tmp = qp_test_tmpdir("gguf-malformed");
    return g_tmp ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_tmp);
    free(g_tmp);
    return 0;
}

/* Open the image from memory and from a file; both must be rejected the same
 * way, with the name of the file and `word` in the formatted message. */
static void expect_bad(const gguf_craft *c, const char *word)
{
    char name[4096], msg[2048];
    snprintf(name, sizeof name, "%s/case-%d.gguf", g_tmp, ++g_case);
    for (int from_file = 0; from_file < 2; from_file++) {
        qp_gguf *g = NULL;
        qp_err err;
        qp_err_clear(&err);
        qp_status st;
        void *img = NULL;
        if (from_file) {
            assert_int_equal(gguf_craft_write_file(c, name), 0);
            st = qp_gguf_open(name, &g, &err);
        } else {
            img = gguf_craft_dup(c);
            st = qp_gguf_open_memory(img, c->len, name, &g, &err);
        }
        qp_err_format(&err, msg, sizeof msg);
        if (getenv("QP_TEST_VERBOSE") && !from_file)
            print_message("case %d: %s\n", g_case, msg);
        if (st != QP_ERR_BAD_INPUT || !strstr(msg, name) || !strstr(msg, word))
            fail_msg("case %d (%s): status %s, message \"%s\", expected \"%s\"", g_case,
                     from_file ? "file" : "memory", qp_status_name(st), msg, word);
        assert_null(g);
        assert_true(strchr(msg, '\n') == NULL);
        free(img);
    }
}

static void expect_bad_spec(const gguf_craft_spec *s, const char *word)
{
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_build(&c, s);
    expect_bad(&c, word);
    gguf_craft_free(&c);
}

static qp_gguf *open_ok(const gguf_craft *c, void **img)
{
    qp_gguf *g = NULL;
    qp_err err;
    char msg[2048];
    *img = gguf_craft_dup(c);
    qp_status st = qp_gguf_open_memory(*img, c->len, "ok.gguf", &g, &err);
    if (st != QP_OK) {
        qp_err_format(&err, msg, sizeof msg);
        fail_msg("expected a valid file: %s", msg);
    }
    return g;
}

/* ---------------------------------------------------------------- baseline */

static void test_default_spec_is_valid(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft c;
    void *img;
    gguf_craft_spec_default(&s);
    gguf_craft_init(&c);
    gguf_craft_build(&c, &s);
    qp_gguf *g = open_ok(&c, &img);
    assert_int_equal(qp_gguf_kv_count(g), 4);
    assert_int_equal(qp_gguf_tensor_count(g), 3);
    int64_t k = qp_gguf_find_key(g, "tokenizer.ggml.tokens");
    assert_int_equal(qp_gguf_arr_len(g, k), 3);
    assert_int_equal(qp_gguf_arr_str(g, k, 1).len, 2);
    assert_memory_equal(qp_gguf_arr_str(g, k, 1).ptr, "bc", 2);
    assert_int_equal(qp_gguf_arr_str(g, k, 2).len, 0);
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, "b");
    assert_non_null(t);
    assert_int_equal(t->nbytes, 68);
    assert_int_equal(t->offset, 64);
    assert_int_equal(qp_gguf_find_tensor(g, "c")->offset, 160);
    qp_gguf_close(g);
    free(img);
    gguf_craft_free(&c);
}

/* ---------------------------------------------------------------- fixed header */

static void test_bad_magic(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.magic = 0x46554746u; /* "FGUF" */
    expect_bad_spec(&s, "magic");
}

static void test_bad_versions(void **state)
{
    (void)state;
    static const uint32_t versions[] = {0, 1, 4, 0xffffffffu};
    gguf_craft_spec s;
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        gguf_craft_spec_default(&s);
        s.version = versions[i];
        expect_bad_spec(&s, "version");
    }
    gguf_craft_spec_default(&s);
    s.version = 0x03000000u;
    expect_bad_spec(&s, "big-endian");
}

static void test_truncated_header(void **state)
{
    (void)state;
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_u32(&c, GGUF_CRAFT_MAGIC);
    gguf_craft_u32(&c, 3);
    gguf_craft_u64(&c, 0);
    expect_bad(&c, "truncated");
    gguf_craft_free(&c);
}

static void test_counts_absurd(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.n_kv = (uint64_t)1 << 62;
    expect_bad_spec(&s, "n_kv");
    s.n_kv = UINT64_MAX - 1; /* UINT64_MAX means AUTO */
    expect_bad_spec(&s, "n_kv");
    gguf_craft_spec_default(&s);
    s.n_tensors = (uint64_t)1 << 59;
    expect_bad_spec(&s, "n_tensors");
    s.n_tensors = UINT64_MAX - 1;
    expect_bad_spec(&s, "n_tensors");
    /* Plausible but wrong: one kv more than present eats the tensor infos. */
    gguf_craft_spec_default(&s);
    s.n_kv = 5;
    expect_bad_spec(&s, "past end");
}

/* ---------------------------------------------------------------- keys and values */

static void test_key_length_past_end(void **state)
{
    (void)state;
    static const uint64_t lens[] = {1000, (uint64_t)1 << 62, UINT64_MAX};
    for (size_t i = 0; i < 3; i++) {
        gguf_craft c;
        gguf_craft_init(&c);
        gguf_craft_header(&c, GGUF_CRAFT_MAGIC, 3, 0, 1);
        gguf_craft_str_len(&c, lens[i], "general.architecture", 20);
        gguf_craft_u32(&c, 8);
        gguf_craft_str(&c, "qwen3");
        expect_bad(&c, "string length");
        gguf_craft_free(&c);
    }
}

static void test_key_empty(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.kvs[3].key = "";
    expect_bad_spec(&s, "empty");
}

static void test_duplicate_key(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.kvs[3].key = "general.architecture";
    expect_bad_spec(&s, "duplicate key 'general.architecture'");
}

static void test_unknown_value_type(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.kvs[3].type = 13;
    expect_bad_spec(&s, "unknown value type 13");
    s.kvs[3].type = 0xffffffffu;
    expect_bad_spec(&s, "value type");
}

static void test_string_value_past_end(void **state)
{
    (void)state;
    uint8_t raw[12] = {0};
    raw[5] = 1; /* length 2^40 */
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.kvs[0].raw = raw;
    s.kvs[0].raw_len = 8;
    expect_bad_spec(&s, "string length");
}

static void test_scalar_truncated(void **state)
{
    (void)state;
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_header(&c, GGUF_CRAFT_MAGIC, 3, 0, 1);
    gguf_craft_key(&c, "x.y", 12); /* FLOAT64 with only 3 bytes left */
    gguf_craft_zeros(&c, 3);
    expect_bad(&c, "truncated");
    gguf_craft_free(&c);
}

static void test_array_length_past_end(void **state)
{
    (void)state;
    static const uint64_t lens[] = {1000, (uint64_t)1 << 61, (uint64_t)1 << 62, UINT64_MAX};
    static const uint32_t u32s[4] = {1, 2, 3, 4};
    gguf_craft_spec s;
    for (size_t i = 0; i < 4; i++) {
        gguf_craft_spec_default(&s);
        s.kvs[3] = (gguf_craft_kv){.key = "x.arr", .type = 9, .elem_type = 4, .n = lens[i],
                                   .raw = u32s, .raw_len = sizeof u32s};
        expect_bad_spec(&s, "array length");
        /* String arrays: the count itself is absurd. */
        gguf_craft_spec_default(&s);
        s.kvs[2].n = lens[i];
        expect_bad_spec(&s, "array length");
    }
}

static void test_array_string_element_past_end(void **state)
{
    (void)state;
    uint8_t raw[16] = {0};
    raw[0] = 0xff; /* element 0 claims 255 bytes; 8 follow */
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.kvs[2] = (gguf_craft_kv){.key = "tokenizer.ggml.tokens", .type = 9, .elem_type = 8,
                               .n = 1, .raw = raw, .raw_len = sizeof raw};
    s.n_tens = 0;
    expect_bad_spec(&s, "string length 255");
}

static void test_array_unknown_element_type(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.kvs[2].elem_type = 13;
    expect_bad_spec(&s, "element type 13");
}

/* An array of arrays `depth` deep whose innermost array holds two u8. */
static void emit_nested(gguf_craft *c, int depth)
{
    if (depth == 1) {
        gguf_craft_arr_head(c, 0, 2);
        gguf_craft_u8(c, 5);
        gguf_craft_u8(c, 6);
        return;
    }
    gguf_craft_arr_head(c, 9, 1);
    emit_nested(c, depth - 1);
}

static void build_nested(gguf_craft *c, int depth)
{
    gguf_craft_init(c);
    gguf_craft_header(c, GGUF_CRAFT_MAGIC, 3, 0, 2);
    gguf_craft_key(c, "x.nested", 9);
    emit_nested(c, depth);
    gguf_craft_kv_u32(c, "x.after", 9);
}

static void test_nested_arrays(void **state)
{
    (void)state;
    for (int depth = 1; depth <= 4; depth++) {
        gguf_craft c;
        void *img;
        build_nested(&c, depth);
        qp_gguf *g = open_ok(&c, &img);
        int64_t k = qp_gguf_find_key(g, "x.nested");
        assert_int_equal(qp_gguf_arr_type(g, k), depth == 1 ? QP_GGUF_U8 : QP_GGUF_ARRAY);
        assert_true((qp_gguf_arr_data(g, k) != NULL) == (depth == 1));
        uint64_t after = 0;
        assert_true(qp_gguf_get_u64(g, "x.after", &after));
        assert_int_equal(after, 9);
        qp_gguf_close(g);
        free(img);
        gguf_craft_free(&c);
    }
    gguf_craft c;
    build_nested(&c, 5);
    expect_bad(&c, "nested");
    gguf_craft_free(&c);
    /* A nested array whose inner length runs past the end. */
    gguf_craft_init(&c);
    gguf_craft_header(&c, GGUF_CRAFT_MAGIC, 3, 0, 1);
    gguf_craft_key(&c, "x.nested", 9);
    gguf_craft_arr_head(&c, 9, 1);
    gguf_craft_arr_head(&c, 6, (uint64_t)1 << 62);
    expect_bad(&c, "array length 4611686018427387904 of FLOAT32");
    gguf_craft_free(&c);
}

/* ---------------------------------------------------------------- alignment */

static void test_alignment_values(void **state)
{
    (void)state;
    static const uint32_t bad[] = {0, 3, 48, 0xffffffffu};
    gguf_craft_spec s;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gguf_craft_spec_default(&s);
        s.kvs[1].u = bad[i];
        expect_bad_spec(&s, "alignment");
    }
}

static void test_alignment_wrong_type(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.kvs[1].type = 10; /* UINT64 32 */
    expect_bad_spec(&s, "general.alignment has type UINT64");
    s.kvs[1].type = 8;
    s.kvs[1].s = "32";
    expect_bad_spec(&s, "general.alignment has type STRING");
}

static void test_alignment_honoured(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft c;
    void *img;
    gguf_craft_spec_default(&s);
    s.kvs[1].u = 64;
    s.alignment = 64;
    gguf_craft_init(&c);
    gguf_craft_build(&c, &s);
    qp_gguf *g = open_ok(&c, &img);
    assert_int_equal(qp_gguf_alignment(g), 64);
    assert_int_equal(qp_gguf_data_offset(g) % 64, 0);
    assert_int_equal(qp_gguf_find_tensor(g, "b")->offset, 64);
    assert_int_equal(qp_gguf_find_tensor(g, "c")->offset, 192);
    qp_gguf_close(g);
    free(img);
    gguf_craft_free(&c);
    /* Offsets fine for 32 but not for 64 are rejected once 64 is declared. */
    gguf_craft_spec_default(&s);
    s.kvs[1].u = 64;
    expect_bad_spec(&s, "not a multiple of the alignment 64");
}

/* ---------------------------------------------------------------- tensor infos */

static void test_n_dims(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[1].n_dims = 0;
    expect_bad_spec(&s, "n_dims 0");
    s.tensors[1].n_dims = 5;
    expect_bad_spec(&s, "n_dims 5");
    s.tensors[1].n_dims = 0xffffffffu;
    expect_bad_spec(&s, "n_dims");
}

static void test_ne_zero_and_huge(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[0].ne[1] = 0;
    expect_bad_spec(&s, "ne[1] is 0");
    gguf_craft_spec_default(&s);
    s.tensors[2].ne[2] = (uint64_t)1 << 63;
    expect_bad_spec(&s, "too large");
    gguf_craft_spec_default(&s);
    s.tensors[2].ne[2] = UINT64_MAX; /* -1 as int64 */
    expect_bad_spec(&s, "too large");
}

static void test_ne_product_overflow(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[2].ne[0] = (uint64_t)1 << 32;
    s.tensors[2].ne[1] = (uint64_t)1 << 31;
    s.tensors[2].ne[2] = 1;
    expect_bad_spec(&s, "overflow");
    gguf_craft_spec_default(&s);
    s.tensors[0].ne[0] = (uint64_t)1 << 40; /* count fits int64, bytes do not */
    s.tensors[0].ne[1] = (uint64_t)1 << 22;
    s.tensors[0].offset = 0;
    expect_bad_spec(&s, "overflow");
}

static void test_unknown_ggml_type(void **state)
{
    (void)state;
    static const uint32_t bad[] = {4, 5, 31, QP_GGML_TYPE_LIMIT, 0xffffffffu};
    gguf_craft_spec s;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        gguf_craft_spec_default(&s);
        s.tensors[1].type = bad[i];
        s.tensors[1].offset = 64;
        s.tensors[2].offset = 160;
        expect_bad_spec(&s, "unknown ggml type");
    }
}

static void test_block_size(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[1].ne[0] = 48; /* Q8_0 blocks hold 32 */
    expect_bad_spec(&s, "block size 32");
    gguf_craft_spec_default(&s);
    s.tensors[1].type = QP_GGML_Q4_K;
    s.tensors[1].ne[0] = 128;
    expect_bad_spec(&s, "block size 256");
}

static void test_offset_unaligned(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[1].offset = 80;
    expect_bad_spec(&s, "offset 80 is not a multiple");
}

static void test_data_past_end(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.data_len = 200; /* "c" ends at 208 */
    expect_bad_spec(&s, "past end");
    gguf_craft_spec_default(&s);
    s.tensors[1].offset = (uint64_t)1 << 62;
    expect_bad_spec(&s, "past end");
    gguf_craft_spec_default(&s);
    s.tensors[1].offset = UINT64_MAX - 31; /* aligned; offset + size wraps */
    expect_bad_spec(&s, "past end");
    /* Header ends but the data section (after padding) is missing. */
    gguf_craft_spec_default(&s);
    s.data_len = 0;
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_build(&c, &s);
    gguf_craft_truncate(&c, c.len - 3);
    expect_bad(&c, "past end");
    gguf_craft_free(&c);
}

static void test_overlap(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[1].offset = 32; /* "a" is [0, 64) */
    expect_bad_spec(&s, "overlap");
    gguf_craft_spec_default(&s);
    s.tensors[2].offset = 0; /* same start */
    expect_bad_spec(&s, "overlap");
}

static void test_tensor_names(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[2].name = "a";
    expect_bad_spec(&s, "duplicate tensor name 'a'");
    gguf_craft_spec_default(&s);
    s.tensors[1].name = "";
    expect_bad_spec(&s, "name is empty");
    /* A tensor name whose length runs past the end. */
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_header(&c, GGUF_CRAFT_MAGIC, 3, 1, 0);
    gguf_craft_str_len(&c, (uint64_t)1 << 40, "token_embd.weight", 17);
    gguf_craft_zeros(&c, 24);
    expect_bad(&c, "string length");
    gguf_craft_free(&c);
}

static void test_control_bytes_in_names(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[0].name = "evil\nname";
    s.tensors[2].name = "evil\nname";
    expect_bad_spec(&s, "evil?name"); /* and expect_bad checks: one line */
}

/* ---------------------------------------------------------------- sweeps */

static void test_every_truncation(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft c;
    void *full;
    gguf_craft_spec_default(&s);
    gguf_craft_init(&c);
    gguf_craft_build(&c, &s);
    qp_gguf *g = open_ok(&c, &full);
    uint64_t need = qp_gguf_data_offset(g) + 208; /* end of tensor "c" */
    qp_gguf_close(g);
    free(full);
    for (size_t len = 0; len < c.len; len++) {
        void *img = malloc(len ? len : 1);
        memcpy(img, c.p, len);
        qp_err err;
        g = NULL;
        qp_status st = qp_gguf_open_memory(img, len, "cut.gguf", &g, &err);
        if (len >= need) {
            assert_int_equal(st, QP_OK);
        } else if (st != QP_ERR_BAD_INPUT) {
            fail_msg("prefix of %zu bytes: status %s", len, qp_status_name(st));
        }
        qp_gguf_close(g);
        free(img);
    }
    gguf_craft_free(&c);
}

/* Touch everything an accepted file exposes, so ASan sees any bad pointer. */
static uint64_t walk(const qp_gguf *g)
{
    uint64_t acc = 0;
    for (int64_t i = 0; i < qp_gguf_kv_count(g); i++) {
        qp_gguf_str k = qp_gguf_kv_key(g, i), v = qp_gguf_kv_str(g, i);
        for (uint64_t j = 0; j < k.len; j++)
            acc += (uint8_t)k.ptr[j];
        for (uint64_t j = 0; j < v.len; j++)
            acc += (uint8_t)v.ptr[j];
        uint64_t n = qp_gguf_arr_len(g, i);
        const uint8_t *d = qp_gguf_arr_data(g, i);
        if (d)
            for (uint64_t j = 0; j < n * qp_gguf_vtype_size(qp_gguf_arr_type(g, i)); j++)
                acc += d[j];
        for (uint64_t j = 0; qp_gguf_arr_type(g, i) == QP_GGUF_STRING && j < n; j++) {
            qp_gguf_str e = qp_gguf_arr_str(g, i, j);
            for (uint64_t b = 0; b < e.len; b++)
                acc += (uint8_t)e.ptr[b];
        }
        double f;
        if (qp_gguf_kv_as_f64(g, i, &f))
            acc++;
    }
    for (int64_t i = 0; i < qp_gguf_tensor_count(g); i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        const uint8_t *d = t->data;
        for (uint64_t j = 0; j < t->nbytes; j++)
            acc += d[j];
        for (uint64_t j = 0; j < t->name.len; j++)
            acc += (uint8_t)t->name.ptr[j];
    }
    return acc;
}

static void test_random_corruption(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft c;
    gguf_craft_spec_default(&s);
    gguf_craft_init(&c);
    gguf_craft_build(&c, &s);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    int accepted = 0, rejected = 0;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *img = gguf_craft_dup(&c);
        int flips = 1 + iter % 4;
        for (int f = 0; f < flips; f++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(rng >> 33) % 260; /* the header region */
            img[at] ^= (uint8_t)(1u << ((rng >> 20) & 7));
            if (iter % 7 == 0)
                img[at] = (uint8_t)(rng >> 40);
        }
        qp_gguf *g = NULL;
        qp_err err;
        qp_status st = qp_gguf_open_memory(img, c.len, "fuzz.gguf", &g, &err);
        if (st == QP_OK) {
            accepted++;
            (void)walk(g);
        } else {
            assert_int_equal(st, QP_ERR_BAD_INPUT);
            assert_string_equal(err.path, "fuzz.gguf");
            rejected++;
        }
        qp_gguf_close(g);
        free(img);
    }
    assert_true(rejected > 1000);
    assert_true(accepted > 0); /* flips in string bytes or data are harmless */
    gguf_craft_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_spec_is_valid),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_bad_versions),
        cmocka_unit_test(test_truncated_header),
        cmocka_unit_test(test_counts_absurd),
        cmocka_unit_test(test_key_length_past_end),
        cmocka_unit_test(test_key_empty),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_unknown_value_type),
        cmocka_unit_test(test_string_value_past_end),
        cmocka_unit_test(test_scalar_truncated),
        cmocka_unit_test(test_array_length_past_end),
        cmocka_unit_test(test_array_string_element_past_end),
        cmocka_unit_test(test_array_unknown_element_type),
        cmocka_unit_test(test_nested_arrays),
        cmocka_unit_test(test_alignment_values),
        cmocka_unit_test(test_alignment_wrong_type),
        cmocka_unit_test(test_alignment_honoured),
        cmocka_unit_test(test_n_dims),
        cmocka_unit_test(test_ne_zero_and_huge),
        cmocka_unit_test(test_ne_product_overflow),
        cmocka_unit_test(test_unknown_ggml_type),
        cmocka_unit_test(test_block_size),
        cmocka_unit_test(test_offset_unaligned),
        cmocka_unit_test(test_data_past_end),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_tensor_names),
        cmocka_unit_test(test_control_bytes_in_names),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
