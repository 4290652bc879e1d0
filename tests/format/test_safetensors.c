/* test_safetensors.c - the safetensors reader on the fixture checkpoints and
 * on one crafted bad file per validation rule. */
/* ctest-labels: fast */
#include "support/qp_test.h"
#include "support/st_craft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/safetensors.h"

static char *g_tmp;
static int g_seq;

static int group_setup(void **state)
{
    (void)state;
    g_tmp = qp_test_tmpdir("test_safetensors");
    return g_tmp ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_tmp);
    free(g_tmp);
    return 0;
}

/* A fresh path in the scratch dir: "<tmp>/<stem>-<n>.safetensors". */
static const char *tmp_path(const char *stem)
{
    static char bufs[4][4096];
    char *b = bufs[g_seq & 3];
    snprintf(b, 4096, "%s/%s-%d.safetensors", g_tmp, stem, g_seq++);
    return b;
}

/* A fresh empty directory in the scratch dir. */
static const char *tmp_dir(const char *stem)
{
    static char bufs[4][4096];
    char *b = bufs[g_seq & 3];
    snprintf(b, 4096, "%s/%s-%d", g_tmp, stem, g_seq++);
    assert_int_equal(mkdir(b, 0755), 0);
    return b;
}

/* The failure must have status `want`, and its one-line rendering must name
 * the file (`file_part`) and the problem (`problem`); when `tensor` is given
 * the error record must carry it. */
static void check_err(qp_status got, qp_status want, const qp_err *err, const char *file_part,
                      const char *problem, const char *tensor)
{
    char line[2048];
    qp_err_format(err, line, sizeof line);
    if (got != want || err->status != want || !strstr(line, file_part) || !strstr(line, problem) ||
        (tensor && strcmp(err->tensor, tensor) != 0)) {
        print_error("status %s (want %s), tensor \"%s\" (want \"%s\")\n  line: %s\n  want file \"%s\", problem \"%s\"\n",
                    qp_status_name(got), qp_status_name(want), err->tensor, tensor ? tensor : "(any)", line, file_part,
                    problem);
        fail();
    }
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Open a crafted file expecting failure; the in-memory validator must agree
 * when the file's header length is sane. */
static void expect_open_fails(const char *path, qp_status want, const char *problem, const char *tensor)
{
    qp_st_model *m = (qp_st_model *)1;
    qp_err err;
    qp_err_clear(&err);
    qp_status st = qp_st_open_file(path, &m, &err);
    assert_null(m);
    check_err(st, want, &err, base_name(path), problem, tensor);
}

/* Header text -> file -> open must fail; also through qp_st_validate_header. */
static void expect_json_fails(const char *json, uint64_t data_size, qp_status want, const char *problem,
                              const char *tensor)
{
    const char *path = tmp_path("bad");
    assert_int_equal(st_craft_write_json(path, json, data_size), 0);
    expect_open_fails(path, want, problem, tensor);
    qp_err err;
    qp_err_clear(&err);
    qp_status st = qp_st_validate_header(json, strlen(json), data_size, "mem.safetensors", &err);
    check_err(st, want, &err, "mem.safetensors", problem, tensor);
}

static void expect_specs_fail(const st_craft_tensor *t, size_t n, qp_status want, const char *problem,
                              const char *tensor)
{
    const char *path = tmp_path("bad");
    assert_int_equal(st_craft_write_file(path, t, n), 0);
    expect_open_fails(path, want, problem, tensor);
}

/* ---- fixtures ---------------------------------------------------------- */

static qp_st_model *open_fixture(const char *model)
{
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    qp_status st = qp_st_open_dir(qp_fixture(model), &m, &err);
    if (st != QP_OK) {
        char line[2048];
        qp_err_format(&err, line, sizeof line);
        print_error("%s\n", line);
    }
    assert_int_equal(st, QP_OK);
    assert_non_null(m);
    return m;
}

static void assert_sorted_unique(const qp_st_model *m)
{
    for (size_t i = 1; i < qp_st_count(m); i++)
        assert_true(strcmp(qp_st_at(m, i - 1)->name, qp_st_at(m, i)->name) < 0);
    assert_null(qp_st_at(m, qp_st_count(m)));
}

static void test_fixture_dense(void **state)
{
    (void)state;
    qp_st_model *m = open_fixture("models/qwen3-tiny");
    assert_int_equal(qp_st_count(m), 46);
    assert_int_equal(qp_st_file_count(m), 2);
    assert_non_null(strstr(qp_st_file_path(m, 0), "model-00001-of-00002.safetensors"));
    assert_int_equal(qp_st_file_size(m, 0), 5966584);
    assert_string_equal(qp_st_metadata_get(m, "format"), "pt");
    assert_null(qp_st_metadata_get(m, "nope"));
    assert_sorted_unique(m);
    assert_null(qp_st_find(m, "lm_head.weight")); /* tied embeddings */
    const qp_st_tensor *t = qp_st_find(m, "model.embed_tokens.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, QP_ST_BF16);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->shape[0], 8192);
    assert_int_equal(t->shape[1], 256);
    assert_int_equal(t->n_elems, 8192 * 256);
    assert_int_equal(t->nbytes, 8192 * 256 * 2);
    assert_int_equal(t->file_offset, 1528); /* from Python's reading of the header */
    assert_int_equal(t->file_index, 0);
    qp_st_close(m);
}

static void test_fixture_moe_and_omni(void **state)
{
    (void)state;
    qp_st_model *m = open_fixture("models/qwen3-moe-tiny");
    assert_int_equal(qp_st_count(m), 231);
    assert_int_equal(qp_st_file_count(m), 3);
    assert_sorted_unique(m);
    assert_string_equal(qp_st_at(m, 0)->name, "lm_head.weight");
    assert_non_null(qp_st_find(m, "model.layers.3.mlp.experts.15.down_proj.weight"));
    assert_non_null(qp_st_find(m, "model.layers.0.mlp.gate.weight"));
    qp_st_close(m);

    m = open_fixture("models/qwen3-omni-tiny-random");
    assert_int_equal(qp_st_count(m), 391);
    assert_int_equal(qp_st_file_count(m), 1);
    assert_sorted_unique(m);
    assert_string_equal(qp_st_at(m, 0)->name, "code2wav.code_embedding.weight");
    qp_st_close(m);

    /* The same file opened directly. */
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_open_file(qp_fixture("models/qwen3-omni-tiny-random/model.safetensors"), &m, &err), QP_OK);
    assert_int_equal(qp_st_count(m), 391);
    qp_st_close(m);
    qp_st_close(NULL);
}

static void test_bf16_reads(void **state)
{
    (void)state;
    qp_st_model *m = open_fixture("models/qwen3-tiny");
    qp_err err;
    qp_err_clear(&err);

    /* Values Python read from the file independently. */
    const qp_st_tensor *t = qp_st_find(m, "model.layers.0.input_layernorm.weight");
    assert_non_null(t);
    float v[256];
    assert_int_equal(qp_st_read_f32(m, t, 0, 256, v, &err), QP_OK);
    assert_true(v[0] == 0.031982421875f && v[1] == 0.044921875f && v[2] == 0.06591796875f &&
                v[3] == 0.05224609375f && v[255] == 0.04833984375f);
    double sum = 0;
    for (int i = 0; i < 256; i++)
        sum += v[i];
    assert_true(fabs(sum - 12.0457763671875) < 1e-9);

    /* Every element of the embedding: read_f32 == bf16 widening of read_raw. */
    t = qp_st_find(m, "model.embed_tokens.weight");
    size_t n = (size_t)t->n_elems;
    uint16_t *raw = malloc(n * 2);
    float *f = malloc(n * 4);
    assert_non_null(raw);
    assert_non_null(f);
    assert_int_equal(qp_st_read_raw(m, t, 0, raw, n * 2, &err), QP_OK);
    assert_int_equal(raw[0], 0xbdbf);
    assert_int_equal(raw[3], 0x3da7);
    assert_int_equal(qp_st_read_f32(m, t, 0, n, f, &err), QP_OK);
    for (size_t i = 0; i < n; i++) {
        uint32_t w = (uint32_t)raw[i] << 16, got;
        memcpy(&got, &f[i], 4);
        if (got != w)
            fail_msg("element %zu: %08x != %08x", i, got, w);
    }
    assert_true(f[n - 1] == -0.0732421875f);

    /* A window in the middle, and a raw read at an offset. */
    assert_int_equal(qp_st_read_f32(m, t, 1000003, 17, v, &err), QP_OK);
    assert_memory_equal(v, f + 1000003, 17 * 4);
    uint16_t two[2];
    assert_int_equal(qp_st_read_raw(m, t, 2 * 777, two, 4, &err), QP_OK);
    assert_memory_equal(two, raw + 777, 4);

    /* Out of range requests are the caller's error, not a crash. */
    assert_int_equal(qp_st_read_f32(m, t, n - 1, 2, v, &err), QP_ERR_USAGE);
    assert_int_equal(qp_st_read_raw(m, t, n * 2 - 1, two, 2, &err), QP_ERR_USAGE);
    assert_int_equal(qp_st_read_raw(m, t, UINT64_MAX, two, 2, &err), QP_ERR_USAGE);
    assert_int_equal(qp_st_read_f32(m, t, UINT64_MAX, 2, v, &err), QP_ERR_USAGE);
    qp_st_release(m, t);
    free(raw);
    free(f);
    qp_st_close(m);
}

/* ---- conversions --------------------------------------------------------- */

static float e4m3_ref(uint8_t b)
{
    int s = b >> 7, e = (b >> 3) & 15, mt = b & 7;
    if (e == 15 && mt == 7)
        return NAN;
    float v = e == 0 ? ldexpf((float)mt / 8.0f, -6) : ldexpf(1.0f + (float)mt / 8.0f, e - 7);
    return s ? -v : v;
}

static float e5m2_ref(uint8_t b)
{
    int s = b >> 7, e = (b >> 2) & 31, mt = b & 3;
    float v;
    if (e == 31)
        v = mt ? NAN : INFINITY;
    else
        v = e == 0 ? ldexpf((float)mt / 4.0f, -14) : ldexpf(1.0f + (float)mt / 4.0f, e - 15);
    return s ? -v : v;
}

static void test_f8_decoding(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        float a = qp_st_f8_e4m3_to_f32((uint8_t)b), r = e4m3_ref((uint8_t)b);
        if (isnan(r) ? !isnan(a) : memcmp(&a, &r, 4) != 0)
            fail_msg("E4M3 %02x: %g != %g", b, a, r);
        a = qp_st_f8_e5m2_to_f32((uint8_t)b);
        r = e5m2_ref((uint8_t)b);
        if (isnan(r) ? !isnan(a) : memcmp(&a, &r, 4) != 0)
            fail_msg("E5M2 %02x: %g != %g", b, a, r);
    }
    assert_true(qp_st_f8_e4m3_to_f32(0x7e) == 448.0f);
    assert_true(isnan(qp_st_f8_e4m3_to_f32(0x7f)) && isnan(qp_st_f8_e4m3_to_f32(0xff)));
    assert_true(qp_st_f8_e4m3_to_f32(0x38) == 1.0f && qp_st_f8_e4m3_to_f32(0xb8) == -1.0f);
    assert_true(qp_st_f8_e4m3_to_f32(0x01) == 0x1.0p-9f);
    assert_true(qp_st_f8_e5m2_to_f32(0x3c) == 1.0f && qp_st_f8_e5m2_to_f32(0x7b) == 57344.0f);
    assert_true(isinf(qp_st_f8_e5m2_to_f32(0x7c)) && isnan(qp_st_f8_e5m2_to_f32(0x7f)));
}

static void test_float_dtypes_to_f32(void **state)
{
    (void)state;
    const float vals[6] = {1.0f, -2.5f, 0.125f, 49152.0f, -0.0f, 3.0f}; /* exact in F16 and BF16 */
    const double dv[3] = {1.0 / 3.0, -1e300, 5e-324};
    const uint8_t f8[4] = {0x38, 0x7e, 0x01, 0xb8};
    const int32_t ints[2] = {7, -7};
    st_craft_tensor t[] = {
        {.name = "f16", .dtype = "F16", .n_dims = 1, .shape = {6}, .values = vals},
        {.name = "bf16", .dtype = "BF16", .n_dims = 2, .shape = {2, 3}, .values = vals},
        {.name = "f32", .dtype = "F32", .n_dims = 1, .shape = {6}, .values = vals},
        {.name = "f64", .dtype = "F64", .n_dims = 1, .shape = {3}, .raw = dv},
        {.name = "e4m3", .dtype = "F8_E4M3", .n_dims = 1, .shape = {4}, .raw = f8},
        {.name = "e5m2", .dtype = "F8_E5M2", .n_dims = 1, .shape = {4}, .raw = f8},
        {.name = "i32", .dtype = "I32", .n_dims = 1, .shape = {2}, .raw = ints},
        {.name = "scalar", .dtype = "F32", .n_dims = 0, .values = vals},
        {.name = "empty", .dtype = "BF16", .n_dims = 2, .shape = {0, 4}},
    };
    const char *path = tmp_path("dtypes");
    assert_int_equal(st_craft_write_file(path, t, sizeof t / sizeof t[0]), 0);
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_open_file(path, &m, &err), QP_OK);
    assert_int_equal(qp_st_count(m), 9);
    float out[6];
    const char *exact[] = {"f16", "bf16", "f32"};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(qp_st_read_f32(m, qp_st_find(m, exact[k]), 0, 6, out, &err), QP_OK);
        assert_memory_equal(out, vals, sizeof vals);
    }
    assert_int_equal(qp_st_read_f32(m, qp_st_find(m, "f64"), 0, 3, out, &err), QP_OK);
    assert_true(out[0] == (float)(1.0 / 3.0) && isinf(out[1]) && out[1] < 0 && out[2] == 0.0f);
    assert_int_equal(qp_st_read_f32(m, qp_st_find(m, "e4m3"), 0, 4, out, &err), QP_OK);
    assert_true(out[0] == 1.0f && out[1] == 448.0f && out[2] == 0x1.0p-9f && out[3] == -1.0f);
    assert_int_equal(qp_st_read_f32(m, qp_st_find(m, "e5m2"), 2, 2, out, &err), QP_OK);
    assert_true(out[0] == 0x1.0p-16f && out[1] == -0.5f);
    const qp_st_tensor *s = qp_st_find(m, "scalar");
    assert_int_equal(s->n_dims, 0);
    assert_int_equal(s->n_elems, 1);
    assert_int_equal(qp_st_read_f32(m, s, 0, 1, out, &err), QP_OK);
    assert_true(out[0] == 1.0f);
    const qp_st_tensor *e = qp_st_find(m, "empty");
    assert_int_equal(e->n_elems, 0);
    assert_int_equal(qp_st_read_f32(m, e, 0, 0, out, &err), QP_OK);
    /* Integers are not converted. */
    const qp_st_tensor *i32 = qp_st_find(m, "i32");
    check_err(qp_st_read_f32(m, i32, 0, 2, out, &err), QP_ERR_USAGE, &err, base_name(path), "not a float dtype",
              "i32");
    int32_t iv[2];
    assert_int_equal(qp_st_read_raw(m, i32, 0, iv, 8, &err), QP_OK);
    assert_int_equal(iv[1], -7);
    qp_st_close(m);
}

static void test_dtype_table(void **state)
{
    (void)state;
    qp_st_dtype dt;
    for (int i = 0; i < QP_ST_DTYPE_COUNT; i++) {
        assert_int_equal(qp_st_dtype_from_name(qp_st_dtype_name((qp_st_dtype)i), &dt), QP_OK);
        assert_int_equal(dt, i);
        assert_int_equal(qp_st_dtype_size(dt), st_craft_dtype_size(qp_st_dtype_name(dt)));
    }
    assert_int_equal(qp_st_dtype_from_name("F8_E8M0", &dt), QP_ERR_UNSUPPORTED);
    assert_int_equal(qp_st_dtype_from_name("bf16", &dt), QP_ERR_BAD_INPUT);
    assert_true(qp_st_dtype_is_float(QP_ST_F8_E5M2) && !qp_st_dtype_is_float(QP_ST_BOOL));
}

/* ---- the file envelope ------------------------------------------------------ */

static const st_craft_tensor ONE[] = {{.name = "w", .dtype = "F32", .n_dims = 2, .shape = {2, 3}}};

static void test_bad_envelope(void **state)
{
    (void)state;
    /* Header length past the end of the file. */
    const char *path = tmp_path("hlen");
    assert_int_equal(st_craft_write_file(path, ONE, 1), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(st_craft_set_header_len(path, (uint64_t)sb.st_size - 7), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "past end of file", NULL);

    /* Header length over 100 MB (the file is tiny: the limit is checked first). */
    path = tmp_path("hbig");
    assert_int_equal(st_craft_write_file(path, ONE, 1), 0);
    assert_int_equal(st_craft_set_header_len(path, 100000001), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "exceeds the 100 MB limit", NULL);
    assert_int_equal(st_craft_set_header_len(path, UINT64_MAX), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "exceeds the 100 MB limit", NULL);

    /* Shorter than the length prefix, and empty. */
    path = tmp_path("short");
    assert_int_equal(qp_test_write_file(path, "\x02\0\0", 3), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "too short", NULL);

    /* Missing file: an OS error. */
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    path = tmp_path("missing");
    check_err(qp_st_open_file(path, &m, &err), QP_ERR_IO, &err, base_name(path), "No such file", NULL);
    assert_null(m);

    /* A directory with nothing to open. */
    const char *d = tmp_dir("emptydir");
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_NOT_FOUND, &err, base_name(d), "no model.safetensors", NULL);
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],", 8, QP_ERR_BAD_INPUT, "not valid JSON", NULL);
    expect_json_fails("", 0, QP_ERR_BAD_INPUT, "not valid JSON", NULL);
    expect_json_fails("[1,2]", 0, QP_ERR_BAD_INPUT, "not a JSON object", NULL);
    expect_json_fails("{} x", 0, QP_ERR_BAD_INPUT, "trailing bytes", NULL);
    expect_json_fails("{\"a\xff\":{}}", 0, QP_ERR_BAD_INPUT, "not valid UTF-8", NULL);

    /* A NUL inside the header. */
    const char *path = tmp_path("nul");
    assert_int_equal(st_craft_write_json_n(path, "{\"a\0\":1}", 8, 0), 0);
    expect_open_fails(path, QP_ERR_BAD_INPUT, "NUL byte", NULL);

    /* 100k nested arrays: a clean error, no stack overflow. */
    size_t depth = 100000;
    char *deep = malloc(depth + 1);
    assert_non_null(deep);
    memset(deep, '[', depth);
    deep[depth] = '\0';
    expect_json_fails(deep, 0, QP_ERR_BAD_INPUT, "nests deeper than", NULL);
    /* ... and objects nested inside a tensor entry. */
    char *obj = malloc(depth * 6 + 64);
    assert_non_null(obj);
    char *o = obj;
    memcpy(o, "{\"w\":", 5);
    o += 5;
    for (size_t i = 0; i < depth; i++, o += 5)
        memcpy(o, "{\"a\":", 5);
    *o = '\0';
    expect_json_fails(obj, 0, QP_ERR_BAD_INPUT, "nests deeper than", NULL);
    free(obj);
    free(deep);
    /* Nesting under cJSON's limit (1000) is only a type error. */
    char *ok = malloc(4096);
    assert_non_null(ok);
    o = ok + sprintf(ok, "{\"w\":{\"dtype\":");
    for (int i = 0; i < 900; i++)
        *o++ = '[';
    for (int i = 0; i < 900; i++)
        *o++ = ']';
    strcpy(o, ",\"shape\":[],\"data_offsets\":[0,4]}}");
    expect_json_fails(ok, 4, QP_ERR_BAD_INPUT, "dtype is not a string", "w");
    free(ok);
}

static void test_bad_types(void **state)
{
    (void)state;
    const char *ok_shape = "\"shape\":[2],\"data_offsets\":[0,8]";
    char j[512];
    snprintf(j, sizeof j, "{\"w\":{\"dtype\":5,%s}}", ok_shape);
    expect_json_fails(j, 8, QP_ERR_BAD_INPUT, "dtype is not a string", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, QP_ERR_BAD_INPUT,
                      "shape is not an array", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, QP_ERR_BAD_INPUT,
                      "shape[0] is not a number", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{\"a\":0}}}", 8, QP_ERR_BAD_INPUT,
                      "data_offsets is not an array of two integers", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,16]}}", 16, QP_ERR_BAD_INPUT,
                      "data_offsets is not an array of two integers", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,\"8\"]}}", 8, QP_ERR_BAD_INPUT,
                      "data_offsets[1] is not a number", "w");
    expect_json_fails("{\"w\":42}", 0, QP_ERR_BAD_INPUT, "entry is not a JSON object", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, QP_ERR_BAD_INPUT, "lacks \"data_offsets\"", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, QP_ERR_BAD_INPUT,
                      "unexpected key \"x\"", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                      QP_ERR_BAD_INPUT, "appears twice", "w");
    expect_json_fails("{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, QP_ERR_BAD_INPUT,
                      "empty name", NULL);
    /* __metadata__ must map strings to strings. */
    expect_json_fails("{\"__metadata__\":{\"format\":1}}", 0, QP_ERR_BAD_INPUT, "__metadata__ value of \"format\"",
                      "format");
    expect_json_fails("{\"__metadata__\":[\"pt\"]}", 0, QP_ERR_BAD_INPUT, "__metadata__ is not a JSON object", NULL);
    expect_json_fails("{\"__metadata__\":{},\"__metadata__\":{}}", 0, QP_ERR_BAD_INPUT, "__metadata__ appears twice",
                      NULL);
}

static void test_bad_numbers(void **state)
{
    (void)state;
    /* Offsets: non-integer, negative, above 2^53 (2^53+2 is exact in a double). */
    st_craft_tensor t = {.name = "w", .dtype = "F32", .n_dims = 1, .shape = {2}, .offsets_json = "[0.5, 8.5]"};
    expect_specs_fail(&t, 1, QP_ERR_BAD_INPUT, "data_offsets[0] (0.5) is not an integer", "w");
    t.offsets_json = "[-8, 0]";
    expect_specs_fail(&t, 1, QP_ERR_BAD_INPUT, "data_offsets[0] is negative", "w");
    t.offsets_json = "[0, 9007199254740994]";
    expect_specs_fail(&t, 1, QP_ERR_BAD_INPUT, "data_offsets[1] (9007199254740994) exceeds 2^53", "w");
    t.offsets_json = "[1e300, 1e301]";
    expect_specs_fail(&t, 1, QP_ERR_BAD_INPUT, "exceeds 2^53", "w");
    /* An integral value written as a float is fine. */
    t.offsets_json = "[0, 8.0]";
    const char *path = tmp_path("intfloat");
    assert_int_equal(st_craft_write_file(path, &t, 1), 0);
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_open_file(path, &m, &err), QP_OK);
    qp_st_close(m);

    /* Shapes: negative, fractional, above 2^53, product over 64 bits, byte
     * size over 64 bits, too many dimensions. */
    st_craft_tensor s = {.name = "w", .dtype = "F32", .offsets_json = "[0, 8]", .shape_json = "[-2]"};
    expect_specs_fail(&s, 1, QP_ERR_BAD_INPUT, "shape[0] is negative", "w");
    s.shape_json = "[2, 1.5]";
    expect_specs_fail(&s, 1, QP_ERR_BAD_INPUT, "shape[1] (1.5) is not an integer", "w");
    s.shape_json = "[18014398509481984]";
    expect_specs_fail(&s, 1, QP_ERR_BAD_INPUT, "shape[0] (18014398509481984) exceeds 2^53", "w");
    s.shape_json = "[4294967296, 4294967296]";
    expect_specs_fail(&s, 1, QP_ERR_BAD_INPUT, "shape product overflows 64 bits", "w");
    s.shape_json = "[9007199254740992, 9007199254740992, 0]"; /* overflow before the 0 */
    expect_specs_fail(&s, 1, QP_ERR_BAD_INPUT, "shape product overflows 64 bits", "w");
    s.shape_json = "[9007199254740992, 1024]"; /* 2^63 elements x 4 bytes */
    expect_specs_fail(&s, 1, QP_ERR_BAD_INPUT, "byte size (shape product x dtype size) overflows 64 bits", "w");
    s.shape_json = "[1,1,1,1,1,1,1,1,2]";
    expect_specs_fail(&s, 1, QP_ERR_UNSUPPORTED, "more than 8 dimensions", "w");

    /* dtypes */
    st_craft_tensor d = {.name = "w", .dtype = "Q9", .n_dims = 1, .shape = {8}, .nbytes = 8};
    expect_specs_fail(&d, 1, QP_ERR_BAD_INPUT, "unknown dtype \"Q9\"", "w");
    d.dtype = "F4";
    expect_specs_fail(&d, 1, QP_ERR_UNSUPPORTED, "dtype F4 is not supported", "w");
}

static void test_bad_ranges(void **state)
{
    (void)state;
    /* Byte size mismatch: 2x3 F32 is 24 bytes, the file says 20. */
    st_craft_tensor t = {.name = "w", .dtype = "F32", .n_dims = 2, .shape = {2, 3}, .nbytes = 20};
    expect_specs_fail(&t, 1, QP_ERR_BAD_INPUT, "byte size mismatch: data_offsets span 20 bytes, F32 x shape needs 24",
                      "w");
    /* Out of the data region. */
    expect_json_fails("{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 8, QP_ERR_BAD_INPUT,
                      "data_offsets [4, 12) out of range: data region is 8 bytes", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[9,9]}}", 8, QP_ERR_BAD_INPUT,
                      "out of range", "w");
    expect_json_fails("{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[8,0]}}", 8, QP_ERR_BAD_INPUT,
                      "start 8 > end 0", "w");
    /* Overlap: b starts inside a. Reported on the later one, naming both. */
    expect_json_fails("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                      12, QP_ERR_BAD_INPUT, "tensor \"b\" data_offsets [4, 12) overlap tensor \"a\" [0, 8)", "b");
    /* Overlap hidden behind a long first range and header order. */
    expect_json_fails("{\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]},"
                      "\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[1,5]}}",
                      16, QP_ERR_BAD_INPUT, "overlap", "b");
    /* Identical ranges. */
    expect_json_fails("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                      "\"b\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
                      4, QP_ERR_BAD_INPUT, "overlap", "b");

    /* Not errors: empty tensors anywhere, holes, unsorted header order. */
    const char *ok = "{\"z\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[12,16]},"
                     "\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                     "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[2,2]}}";
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_validate_header(ok, strlen(ok), 16, "ok", &err), QP_OK);
    const char *path = tmp_path("ok");
    assert_int_equal(st_craft_write_json(path, ok, 16), 0);
    qp_st_model *m = NULL;
    assert_int_equal(qp_st_open_file(path, &m, &err), QP_OK);
    assert_int_equal(qp_st_count(m), 3);
    assert_string_equal(qp_st_at(m, 0)->name, "a");
    assert_string_equal(qp_st_at(m, 2)->name, "z");
    assert_int_equal(qp_st_at(m, 2)->file_offset, 8 + strlen(ok) + 12);
    qp_st_close(m);
}

static void test_duplicates(void **state)
{
    (void)state;
    /* Within one header (JSON allows the repeated key; we do not). */
    st_craft_tensor two[] = {
        {.name = "w", .dtype = "F32", .n_dims = 1, .shape = {2}},
        {.name = "w", .dtype = "F32", .n_dims = 1, .shape = {2}},
    };
    expect_specs_fail(two, 2, QP_ERR_BAD_INPUT, "duplicate tensor name \"w\"", "w");

    /* Across the files of an index-less directory. */
    const char *d = tmp_dir("dupglob");
    char p[4096];
    snprintf(p, sizeof p, "%s/a.safetensors", d);
    assert_int_equal(st_craft_write_file(p, two, 1), 0);
    snprintf(p, sizeof p, "%s/b.safetensors", d);
    assert_int_equal(st_craft_write_file(p, two + 1, 1), 0);
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, "b.safetensors",
              "duplicate tensor name \"w\" (also in ", "w");
    assert_non_null(strstr(err.msg, "a.safetensors"));
    assert_null(m);

    /* Across shards of an indexed checkpoint: the index can only say one. */
    st_craft_tensor t[] = {
        {.name = "x", .dtype = "BF16", .n_dims = 1, .shape = {4}},
        {.name = "w", .dtype = "BF16", .n_dims = 1, .shape = {4}},
        {.name = "w", .dtype = "BF16", .n_dims = 1, .shape = {4}},
        {.name = "y", .dtype = "BF16", .n_dims = 1, .shape = {4}},
    };
    d = tmp_dir("dupshard");
    const int shard_of[] = {0, 0, 1, 1};
    assert_int_equal(st_craft_write_sharded(d, t, 4, shard_of, 2), 0);
    assert_int_equal(st_craft_write_index_json(d, "{\"weight_map\":{\"x\":\"model-00001-of-00002.safetensors\","
                                                  "\"w\":\"model-00001-of-00002.safetensors\","
                                                  "\"y\":\"model-00002-of-00002.safetensors\"}}"),
                     0);
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, "model-00002-of-00002.safetensors",
              "duplicate tensor name \"w\"", "w");
}

/* A three-tensor, two-shard checkpoint; returns its directory. */
static const char *good_sharded(void)
{
    static const st_craft_tensor t[] = {
        {.name = "a", .dtype = "BF16", .n_dims = 2, .shape = {2, 4}},
        {.name = "b", .dtype = "F32", .n_dims = 1, .shape = {3}},
        {.name = "c", .dtype = "F16", .n_dims = 1, .shape = {5}},
    };
    static const int shard_of[] = {1, 0, 1};
    const char *d = tmp_dir("sharded");
    assert_int_equal(st_craft_write_sharded(d, t, 3, shard_of, 2), 0);
    return d;
}

static void test_index(void **state)
{
    (void)state;
    const char *d = good_sharded();
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_open_dir(d, &m, &err), QP_OK);
    assert_int_equal(qp_st_count(m), 3);
    assert_int_equal(qp_st_file_count(m), 2);
    assert_int_equal(qp_st_find(m, "b")->file_index, 0);
    assert_int_equal(qp_st_find(m, "c")->file_index, 1);
    float v[5];
    assert_int_equal(qp_st_read_f32(m, qp_st_find(m, "c"), 0, 5, v, &err), QP_OK);
    assert_true(v[0] == -0.5f && v[1] == -0.0625f); /* st_craft's pattern (i*7%17-8)/16 */
    qp_st_close(m);

    const char *s1 = "model-00001-of-00002.safetensors", *s2 = "model-00002-of-00002.safetensors";
    char json[1024];

    /* The index names a shard file that does not exist. */
    d = good_sharded();
    snprintf(json, sizeof json,
             "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\",\"c\":\"%s\",\"z\":\"model-00009-of-00009.safetensors\"}}", s2,
             s1, s2);
    assert_int_equal(st_craft_write_index_json(d, json), 0);
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, "model.safetensors.index.json",
              "index names shard model-00009-of-00009.safetensors (for tensor \"z\"), which does not exist", "z");

    /* The index names a tensor its shard lacks. */
    d = good_sharded();
    snprintf(json, sizeof json, "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\",\"c\":\"%s\",\"ghost\":\"%s\"}}", s2, s1,
             s2, s1);
    assert_int_equal(st_craft_write_index_json(d, json), 0);
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, "model.safetensors.index.json",
              "index maps tensor \"ghost\" to shard model-00001-of-00002.safetensors, which does not contain it",
              "ghost");

    /* The index puts a tensor in the wrong shard. */
    d = good_sharded();
    snprintf(json, sizeof json, "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\",\"c\":\"%s\"}}", s1, s1, s2);
    assert_int_equal(st_craft_write_index_json(d, json), 0);
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, "model.safetensors.index.json",
              "index maps tensor \"a\" to shard model-00001-of-00002.safetensors, but it is in", "a");

    /* A shard holds a tensor the index does not list. */
    d = good_sharded();
    snprintf(json, sizeof json, "{\"weight_map\":{\"a\":\"%s\",\"b\":\"%s\"}}", s2, s1);
    assert_int_equal(st_craft_write_index_json(d, json), 0);
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, s2, "tensor \"c\" is in this shard but not in the index",
              "c");

    /* Malformed indexes. */
    struct {
        const char *json, *problem;
    } bad[] = {
        {"{\"weight_map\":", "index is not valid JSON"},
        {"[]", "index is not a JSON object"},
        {"{\"metadata\":{}}", "index has no \"weight_map\""},
        {"{\"weight_map\":[]}", "\"weight_map\" is not a JSON object"},
        {"{\"weight_map\":{}}", "\"weight_map\" is empty"},
        {"{\"weight_map\":{\"a\":3}}", "weight_map entry for \"a\" is not a shard file name"},
        {"{\"weight_map\":{\"a\":\"../model-00001-of-00002.safetensors\"}}", "is not a shard file name"},
        {"{\"weight_map\":{\"a\":\"x\",\"a\":\"y\"}}", "weight_map lists tensor \"a\" twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        d = good_sharded();
        assert_int_equal(st_craft_write_index_json(d, bad[i].json), 0);
        check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, "model.safetensors.index.json", bad[i].problem,
                  NULL);
    }

    /* A bad shard behind a good index: the error names the shard. */
    d = good_sharded();
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", d, s1);
    assert_int_equal(st_craft_set_header_len(p, 1u << 30), 0);
    check_err(qp_st_open_dir(d, &m, &err), QP_ERR_BAD_INPUT, &err, s1, "exceeds the 100 MB limit", NULL);
}

static void test_glob_dir(void **state)
{
    (void)state;
    /* No index, no model.safetensors: every *.safetensors, in name order. */
    const char *d = tmp_dir("glob");
    st_craft_tensor a = {.name = "a", .dtype = "U8", .n_dims = 1, .shape = {3}};
    st_craft_tensor b = {.name = "b", .dtype = "U8", .n_dims = 1, .shape = {5}};
    char p[4096];
    snprintf(p, sizeof p, "%s/z-part.safetensors", d);
    assert_int_equal(st_craft_write_file_meta(p, &a, 1, "{\"who\":\"z\"}"), 0);
    snprintf(p, sizeof p, "%s/m-part.safetensors", d);
    assert_int_equal(st_craft_write_file_meta(p, &b, 1, "{\"who\":\"m\"}"), 0);
    snprintf(p, sizeof p, "%s/notes.txt", d);
    assert_int_equal(qp_test_write_file(p, "x", 1), 0);
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_open_dir(d, &m, &err), QP_OK);
    assert_int_equal(qp_st_file_count(m), 2);
    assert_non_null(strstr(qp_st_file_path(m, 0), "m-part"));
    assert_string_equal(qp_st_metadata_get(m, "who"), "m");
    assert_int_equal(qp_st_find(m, "a")->file_index, 1);
    qp_st_close(m);

    /* model.safetensors wins over the others. */
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    st_craft_tensor c = {.name = "only", .dtype = "U8", .n_dims = 1, .shape = {1}};
    assert_int_equal(st_craft_write_file_meta(p, &c, 1, ""), 0);
    assert_int_equal(qp_st_open_dir(d, &m, &err), QP_OK);
    assert_int_equal(qp_st_count(m), 1);
    assert_null(qp_st_metadata_get(m, "format"));
    qp_st_close(m);
}

static void test_truncated_after_open(void **state)
{
    (void)state;
    st_craft_tensor t[] = {
        {.name = "a", .dtype = "F32", .n_dims = 1, .shape = {64}},
        {.name = "b", .dtype = "BF16", .n_dims = 1, .shape = {64}},
    };
    const char *path = tmp_path("trunc");
    assert_int_equal(st_craft_write_file(path, t, 2), 0);
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_open_file(path, &m, &err), QP_OK);
    const qp_st_tensor *a = qp_st_find(m, "a"), *b = qp_st_find(m, "b");
    float v[64];
    assert_int_equal(qp_st_read_f32(m, b, 0, 64, v, &err), QP_OK);

    /* Cut the file in the middle of "b" (which follows "a"). */
    assert_int_equal(st_craft_truncate(path, b->file_offset + 10), 0);
    check_err(qp_st_read_f32(m, b, 0, 64, v, &err), QP_ERR_IO, &err, base_name(path), "file shrank", "b");
    check_err(qp_st_read_raw(m, b, 100, v, 8, &err), QP_ERR_IO, &err, base_name(path), "file shrank", "b");
    /* Bytes still present remain readable. */
    assert_int_equal(qp_st_read_raw(m, b, 0, v, 10, &err), QP_OK);
    assert_int_equal(qp_st_read_f32(m, a, 0, 64, v, &err), QP_OK);
    qp_st_release(m, a);
    qp_st_close(m);
}

static void test_large_offsets(void **state)
{
    (void)state;
    /* A tensor 5 GB into the data region of a sparse file. */
    const uint64_t far = 5000000000ull;
    char json[256];
    snprintf(json, sizeof json,
             "{\"pad\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
             "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%llu,%llu]}}",
             (unsigned long long)far, (unsigned long long)far, (unsigned long long)far, (unsigned long long)far + 8);
    const char *path = tmp_path("big");
    if (st_craft_write_json(path, json, far + 8) != 0) {
        skip(); /* filesystem without sparse files of this size */
    }
    const float vals[2] = {1.5f, -3.25f};
    assert_int_equal(st_craft_patch(path, 8 + strlen(json) + far, vals, 8), 0);
    qp_st_model *m = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_st_open_file(path, &m, &err), QP_OK);
    const qp_st_tensor *w = qp_st_find(m, "w");
    assert_int_equal(w->file_offset, 8 + strlen(json) + far);
    assert_int_equal(qp_st_find(m, "pad")->nbytes, far);
    float v[2];
    assert_int_equal(qp_st_read_f32(m, w, 0, 2, v, &err), QP_OK);
    assert_memory_equal(v, vals, 8);
    qp_st_release(m, w);
    qp_st_close(m);
    assert_int_equal(st_craft_truncate(path, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_dense),
        cmocka_unit_test(test_fixture_moe_and_omni),
        cmocka_unit_test(test_bf16_reads),
        cmocka_unit_test(test_f8_decoding),
        cmocka_unit_test(test_float_dtypes_to_f32),
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_bad_envelope),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_types),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_bad_ranges),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_glob_dir),
        cmocka_unit_test(test_truncated_after_open),
        cmocka_unit_test(test_large_offsets),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
