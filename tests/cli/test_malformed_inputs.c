/* test_malformed_inputs.c - hostile and broken files through the qpack
 * binary, one defect per case: safetensors headers and indexes (convert),
 * GGUF structure (inspect and verify), and config.json values that
 * contradict the tensors. Every case must end with exit status 2, exactly
 * one line "qpack: ..." naming the offending file (or tensor) and the
 * problem, and no output file, final or temporary. */
/* ctest-labels: fast */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "support/gguf_craft.h"
#include "support/qp_test.h"
#include "support/st_craft.h"
#include "support/tiny_ckpt.h"

static char *g_root;
static int g_cases;

static int setup(void **state)
{
    (void)state;
    g_root = qp_test_tmpdir("malformed");
    return g_root ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_root);
    free(g_root);
    /* The issue asks for >= 40 malformed-file cases through the CLI; this
     * file holds most of them (test_cli_errors.c has the rest). */
    printf("malformed-input cases run: %d\n", g_cases);
    return 0;
}

static const char *path_in(const char *name)
{
    static char buf[8][4096];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_root, name);
    return buf[slot];
}

/* One bad-input verdict: exit 2, one line, names `must_name`, says
 * `problem` (case-sensitive substring). */
static void expect_verdict(const char *what, qp_run_result *r, const char *must_name, const char *problem)
{
    int ok = r->exit_code == 2 && qp_count_lines(r->err) == 1 && strncmp(r->err, "qpack: ", 7) == 0 &&
             strstr(r->err, must_name) && strstr(r->err, problem);
    if (getenv("QP_TEST_VERBOSE"))
        printf("%-45s exit %d: %s", what, r->exit_code, r->err);
    if (!ok)
        print_error("case %s: exit %d, want 2 naming '%s' and '%s'; stderr: %s\n", what, r->exit_code, must_name,
                    problem, r->err);
    assert_int_equal(r->exit_code, 2);
    assert_int_equal(qp_count_lines(r->err), 1);
    assert_true(strncmp(r->err, "qpack: ", 7) == 0);
    assert_non_null(strstr(r->err, must_name));
    assert_non_null(strstr(r->err, problem));
}

/* convert `dir`; bad input expected, and nothing written. */
static void expect_convert_bad(const char *what, const char *dir, const char *must_name, const char *problem)
{
    const char *out = path_in("out.gguf");
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q", dir, out);
    expect_verdict(what, &r, must_name, problem);
    assert_false(qp_test_file_exists(out));
    assert_false(qp_test_file_exists(tmp));
    qp_run_free(&r);
    g_cases++;
}

/* inspect and verify `file`; both must refuse it the same way. */
static void expect_gguf_bad(const char *what, const char *file, const char *problem)
{
    qp_run_result r = qp_run_qpack("inspect %s", file);
    expect_verdict(what, &r, file, problem);
    qp_run_free(&r);
    r = qp_run_qpack("verify %s -q", file);
    expect_verdict(what, &r, file, problem);
    qp_run_free(&r);
    g_cases++;
}

/* ------------------------------------------------------------ safetensors */

/* A valid tiny checkpoint in `name` whose model.safetensors is then
 * replaced by the caller; returns the directory. */
static const char *ckpt(const char *name, const qp_tiny_ckpt *c)
{
    const char *dir = path_in(name);
    qp_tiny_ckpt d = {0};
    assert_int_equal(qp_tiny_ckpt_write(dir, c ? c : &d), 0);
    return dir;
}

static void st_case_json(const char *name, const char *json, uint64_t data_size, const char *problem)
{
    const char *dir = ckpt(name, NULL);
    char f[4200];
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    assert_int_equal(st_craft_write_json(f, json, data_size), 0);
    expect_convert_bad(name, dir, f, problem);
}

static void st_case_specs(const char *name, const st_craft_tensor *t, size_t n, const char *must_name,
                          const char *problem)
{
    const char *dir = ckpt(name, NULL);
    char f[4200];
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    assert_int_equal(st_craft_write_file(f, t, n), 0);
    expect_convert_bad(name, dir, must_name ? must_name : f, problem);
}

static void test_st_header_length(void **state)
{
    (void)state;
    const char *dir = ckpt("st-hdr-100mb", NULL);
    char f[4200];
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    assert_int_equal(st_craft_set_header_len(f, 200000000ull), 0);
    expect_convert_bad("header over 100 MB", dir, f, "100 MB");

    dir = ckpt("st-hdr-past", NULL);
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    size_t n;
    void *d = qp_test_read_file(f, &n);
    free(d);
    assert_int_equal(st_craft_set_header_len(f, n - 4), 0);
    expect_convert_bad("header length past file", dir, f, "header");

    dir = ckpt("st-short", NULL);
    snprintf(f, sizeof f, "%s/model.safetensors", dir);
    assert_int_equal(st_craft_truncate(f, 5), 0);
    expect_convert_bad("file shorter than the length prefix", dir, f, "too short");
}

static void test_st_json(void **state)
{
    (void)state;
    st_case_json("st-trunc-json", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0,", 8,
                 "JSON");
    char *deep = malloc(20001);
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    deep[20000] = '\0';
    st_case_json("st-deep", deep, 0, "nest");
    free(deep);
    st_case_json("st-array-root", "[1, 2, 3]", 0, "object");
    st_case_json("st-entry-number", "{\"w\": 42}", 0, "w");
    st_case_json("st-dtype-number", "{\"w\": {\"dtype\": 7, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "dtype");
    st_case_json("st-shape-string", "{\"w\": {\"dtype\": \"F32\", \"shape\": \"2\", \"data_offsets\": [0, 8]}}", 8,
                 "shape");
    st_case_json("st-shape-fraction",
                 "{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5, 2], \"data_offsets\": [0, 12]}}", 12, "shape");
    st_case_json("st-shape-negative", "{\"w\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}",
                 8, "shape");
    /* A control character in a name must not split the error line. */
    st_case_json("st-newline-name", "{\"bad\\nname\": {\"dtype\": \"Q9\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                 8, "dtype");
    st_case_json("st-trailing", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}} x", 8,
                 "trailing");
}

static void test_st_offsets_and_sizes(void **state)
{
    (void)state;
    st_craft_tensor two[] = {
        {.name = "model.norm.weight", .dtype = "F32", .n_dims = 1, .shape = {4}},
        {.name = "model.embed_tokens.weight", .dtype = "F32", .n_dims = 1, .shape = {4}, .offsets_json = "[8, 24]"},
    };
    st_case_specs("st-overlap", two, 2, NULL, "overlap");
    st_craft_tensor one[] = {{.name = "model.norm.weight", .dtype = "F32", .n_dims = 1, .shape = {4},
                              .offsets_json = "[0, 4096]"}};
    st_case_specs("st-offset-range", one, 1, NULL, "model.norm.weight");
    one[0].offsets_json = "[16, 0]";
    st_case_specs("st-offset-reversed", one, 1, NULL, "model.norm.weight");
    one[0].offsets_json = "[0, 9007199254740993]";
    st_case_specs("st-offset-2p53", one, 1, NULL, "model.norm.weight");
    one[0].offsets_json = "[0]";
    st_case_specs("st-offset-arity", one, 1, NULL, "data_offsets");
    one[0].offsets_json = NULL;
    one[0].shape_json = "[4294967296, 4294967296, 4]";
    st_case_specs("st-shape-overflow", one, 1, NULL, "overflow");
    one[0].shape_json = NULL;
    one[0].nbytes = 12;
    st_case_specs("st-size-mismatch", one, 1, NULL, "model.norm.weight");
    one[0].nbytes = 0;
    one[0].dtype = "Q9";
    st_case_specs("st-unknown-dtype", one, 1, NULL, "Q9");
    one[0].dtype = "F32";
    st_craft_tensor dup[] = {
        {.name = "model.norm.weight", .dtype = "F32", .n_dims = 1, .shape = {4}},
        {.name = "model.norm.weight", .dtype = "F32", .n_dims = 1, .shape = {4}},
    };
    st_case_specs("st-duplicate", dup, 2, NULL, "model.norm.weight");
}

/* ------------------------------------------------------------ index */

static cJSON *read_json(const char *path)
{
    size_t n;
    char *t = qp_test_read_file(path, &n);
    assert_non_null(t);
    cJSON *j = cJSON_ParseWithLength(t, n);
    free(t);
    assert_non_null(j);
    return j;
}

static void write_json(const char *path, cJSON *j)
{
    char *t = cJSON_Print(j);
    assert_non_null(t);
    assert_int_equal(qp_test_write_file(path, t, strlen(t)), 0);
    free(t);
}

/* A sharded tiny checkpoint whose index gets `edit` applied. */
static const char *index_case(const char *name, void (*edit)(cJSON *wm), char *index_path, size_t size)
{
    qp_tiny_ckpt c = {.n_shards = 2};
    const char *dir = ckpt(name, &c);
    snprintf(index_path, size, "%s/model.safetensors.index.json", dir);
    if (edit) {
        cJSON *root = read_json(index_path);
        edit(cJSON_GetObjectItemCaseSensitive(root, "weight_map"));
        write_json(index_path, root);
        cJSON_Delete(root);
    }
    return dir;
}

static void add_missing_shard(cJSON *wm)
{
    cJSON_AddStringToObject(wm, "model.layers.0.extra.weight", "model-00007-of-00009.safetensors");
}
static void add_missing_tensor(cJSON *wm)
{
    cJSON_AddStringToObject(wm, "model.layers.0.ghost.weight", "model-00001-of-00002.safetensors");
}
static void drop_one(cJSON *wm) { cJSON_DeleteItemFromObjectCaseSensitive(wm, "model.norm.weight"); }
static void move_one(cJSON *wm)
{
    cJSON_ReplaceItemInObjectCaseSensitive(wm, "model.norm.weight",
                                           cJSON_CreateString("model-00001-of-00002.safetensors"));
}
static void escape_dir(cJSON *wm)
{
    cJSON_ReplaceItemInObjectCaseSensitive(wm, "model.norm.weight",
                                           cJSON_CreateString("../model-00002-of-00002.safetensors"));
}
static void number_shard(cJSON *wm) { cJSON_ReplaceItemInObjectCaseSensitive(wm, "model.norm.weight", cJSON_CreateNumber(2)); }

static void test_index(void **state)
{
    (void)state;
    char idx[4200];
    const char *dir = index_case("ix-missing-shard", add_missing_shard, idx, sizeof idx);
    expect_convert_bad("index names a missing shard", dir, "model-00007-of-00009.safetensors", "does not exist");
    dir = index_case("ix-missing-tensor", add_missing_tensor, idx, sizeof idx);
    expect_convert_bad("index names a missing tensor", dir, "model.layers.0.ghost.weight", "does not contain");
    dir = index_case("ix-unlisted", drop_one, idx, sizeof idx);
    expect_convert_bad("tensor not in the index", dir, "model.norm.weight", "not in the index");
    dir = index_case("ix-wrong-shard", move_one, idx, sizeof idx);
    expect_convert_bad("index maps to the wrong shard", dir, "model.norm.weight", "model-00002-of-00002");
    dir = index_case("ix-escape", escape_dir, idx, sizeof idx);
    expect_convert_bad("shard path outside the directory", dir, idx, "shard file name");
    dir = index_case("ix-number", number_shard, idx, sizeof idx);
    expect_convert_bad("shard name not a string", dir, idx, "shard file name");
    dir = index_case("ix-trunc", NULL, idx, sizeof idx);
    assert_int_equal(qp_test_write_file(idx, "{\"weight_map\": {\"a\": ", 21), 0);
    expect_convert_bad("index truncated JSON", dir, idx, "JSON");
    dir = index_case("ix-type", NULL, idx, sizeof idx);
    assert_int_equal(qp_test_write_file(idx, "{\"weight_map\": [1, 2]}", 22), 0);
    expect_convert_bad("weight_map of the wrong type", dir, idx, "weight_map");
}

/* ------------------------------------------------------------ GGUF */

static const char *gguf_case(const char *name, const gguf_craft_spec *s)
{
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_build(&c, s);
    const char *f = path_in(name);
    assert_int_equal(gguf_craft_write_file(&c, f), 0);
    gguf_craft_free(&c);
    return f;
}

static void test_gguf_header(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.magic = 0x46554746u;
    expect_gguf_bad("bad magic", gguf_case("g-magic.gguf", &s), "magic");
    gguf_craft_spec_default(&s);
    s.version = 7;
    expect_gguf_bad("bad version", gguf_case("g-version.gguf", &s), "version");
    gguf_craft_spec_default(&s);
    s.n_tensors = 1ull << 62;
    expect_gguf_bad("absurd n_tensors", gguf_case("g-ntensors.gguf", &s), "tensor");
    gguf_craft_spec_default(&s);
    s.n_kv = 1ull << 60;
    expect_gguf_bad("absurd n_kv", gguf_case("g-nkv.gguf", &s), "n_kv");

    /* A key whose length runs past the end of the file. */
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_header(&c, GGUF_CRAFT_MAGIC, 3, 0, 1);
    gguf_craft_str_len(&c, 1ull << 40, "general.architecture", 20);
    const char *f = path_in("g-keylen.gguf");
    assert_int_equal(gguf_craft_write_file(&c, f), 0);
    gguf_craft_free(&c);
    expect_gguf_bad("string length past the file", f, "past");

    gguf_craft_spec_default(&s);
    s.kvs[0].type = 13;
    expect_gguf_bad("unknown value type", gguf_case("g-vtype.gguf", &s), "type");

    gguf_craft_spec_default(&s);
    s.kvs[2].n = 1ull << 61;
    expect_gguf_bad("array length past the file", gguf_case("g-arrlen.gguf", &s), "tokenizer.ggml.tokens");

    gguf_craft_spec_default(&s);
    s.kvs[3].key = "general.architecture";
    expect_gguf_bad("duplicate key", gguf_case("g-dupkey.gguf", &s), "general.architecture");

    /* A file cut inside the tensor infos. */
    gguf_craft_spec_default(&s);
    gguf_craft_init(&c);
    gguf_craft_build(&c, &s);
    gguf_craft_truncate(&c, 200);
    f = path_in("g-cut.gguf");
    assert_int_equal(gguf_craft_write_file(&c, f), 0);
    gguf_craft_free(&c);
    expect_gguf_bad("truncated file", f, "truncated");
}

static void test_gguf_tensors(void **state)
{
    (void)state;
    gguf_craft_spec s;
    gguf_craft_spec_default(&s);
    s.tensors[0].n_dims = 5;
    expect_gguf_bad("5 dims", gguf_case("t-dims5.gguf", &s), "dim");
    gguf_craft_spec_default(&s);
    s.tensors[0].n_dims = 0;
    expect_gguf_bad("0 dims", gguf_case("t-dims0.gguf", &s), "dim");
    gguf_craft_spec_default(&s);
    s.tensors[2].ne[1] = 0;
    expect_gguf_bad("zero-sized dimension", gguf_case("t-ne0.gguf", &s), "c");
    gguf_craft_spec_default(&s);
    s.tensors[2].type = 99;
    expect_gguf_bad("unknown ggml type", gguf_case("t-type.gguf", &s), "type");
    gguf_craft_spec_default(&s);
    s.tensors[1].ne[0] = 40; /* Q8_0 rows are whole 32-element blocks */
    expect_gguf_bad("row not a whole number of blocks", gguf_case("t-block.gguf", &s), "b");
    gguf_craft_spec_default(&s);
    s.tensors[0].n_dims = 4;
    s.tensors[0].ne[1] = 1ull << 40;
    s.tensors[0].ne[2] = 1ull << 40;
    s.tensors[0].ne[3] = 1ull << 40;
    expect_gguf_bad("shape product overflow", gguf_case("t-overflow.gguf", &s), "a");
    gguf_craft_spec_default(&s);
    s.tensors[2].offset = 1ull << 30;
    s.data_len = 256;
    expect_gguf_bad("tensor data past the end", gguf_case("t-past.gguf", &s), "c");
    gguf_craft_spec_default(&s);
    s.tensors[2].offset = 0xffffffffffffffe0ull;
    s.data_len = 256;
    expect_gguf_bad("offset + size wraps", gguf_case("t-wrap.gguf", &s), "c");
    gguf_craft_spec_default(&s);
    s.tensors[1].offset = 68;
    expect_gguf_bad("misaligned offset", gguf_case("t-misaligned.gguf", &s), "align");
    gguf_craft_spec_default(&s);
    s.tensors[1].offset = 0;
    expect_gguf_bad("overlapping tensor data", gguf_case("t-overlap.gguf", &s), "overlap");
    gguf_craft_spec_default(&s);
    s.tensors[2].name = "a";
    expect_gguf_bad("duplicate tensor name", gguf_case("t-dup.gguf", &s), "a");
    gguf_craft_spec_default(&s);
    s.kvs[1].u = 0;
    expect_gguf_bad("alignment 0", gguf_case("t-align0.gguf", &s), "alignment");
    gguf_craft_spec_default(&s);
    s.kvs[1].u = 48;
    expect_gguf_bad("alignment not a power of two", gguf_case("t-align48.gguf", &s), "alignment");
    gguf_craft_spec_default(&s);
    s.kvs[1].type = 8;
    s.kvs[1].s = "32";
    expect_gguf_bad("alignment of the wrong type", gguf_case("t-aligntype.gguf", &s), "alignment");
}

/* ------------------------------------------------------------ config vs tensors */

static void set_config(const char *dir, const char *key, double value)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    cJSON *root = read_json(p);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    assert_non_null(v);
    cJSON_SetNumberValue(v, value);
    write_json(p, root);
    cJSON_Delete(root);
}

static int g_bad_expert; /* which expert's gate_proj gets the wrong width */
static int expert_shape(void *ctx, st_craft_tensor *t)
{
    (void)ctx;
    char want[96];
    snprintf(want, sizeof want, "model.layers.0.mlp.experts.%d.gate_proj.weight", g_bad_expert);
    if (strcmp(t->name, want) == 0) {
        t->shape[0] = 32; /* moe_intermediate_size is 64 */
        t->values = NULL;
    }
    return 0;
}

static void test_config_contradictions(void **state)
{
    (void)state;
    const char *dir = ckpt("cfg-hidden", NULL);
    set_config(dir, "hidden_size", 128);
    expect_convert_bad("hidden_size contradicts", dir, "model.", "config implies");

    dir = ckpt("cfg-layers-more", NULL);
    set_config(dir, "num_hidden_layers", 2);
    expect_convert_bad("more layers than tensors", dir, "layer 1", "lacks");

    qp_tiny_ckpt two = {.n_layers = 2};
    dir = ckpt("cfg-layers-fewer", &two);
    set_config(dir, "num_hidden_layers", 1);
    expect_convert_bad("fewer layers than tensors", dir, "model.layers.1.", "past num_hidden_layers");

    dir = ckpt("cfg-heads", NULL);
    set_config(dir, "num_attention_heads", 4);
    expect_convert_bad("heads contradict q_proj", dir, "q_proj", "config implies");

    dir = ckpt("cfg-vocab", NULL);
    set_config(dir, "vocab_size", 9000);
    expect_convert_bad("vocab_size contradicts embeddings", dir, "embed_tokens", "config implies");

    qp_tiny_ckpt moe = {.moe = 1};
    dir = ckpt("cfg-experts-more", &moe);
    set_config(dir, "num_experts", 6);
    expect_convert_bad("more experts in config than tensors", dir, "mlp.gate.weight", "config implies");

    g_bad_expert = 2;
    qp_tiny_ckpt moe_bad = {.moe = 1, .mutate = expert_shape};
    dir = ckpt("cfg-expert-shape", &moe_bad);
    expect_convert_bad("one expert of another shape", dir, "experts.2.gate_proj", "config implies");

    dir = ckpt("cfg-expert-ffn", &moe);
    set_config(dir, "moe_intermediate_size", 128);
    expect_convert_bad("moe_intermediate_size contradicts experts", dir, "experts", "config implies");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_st_header_length),
        cmocka_unit_test(test_st_json),
        cmocka_unit_test(test_st_offsets_and_sizes),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_gguf_header),
        cmocka_unit_test(test_gguf_tensors),
        cmocka_unit_test(test_config_contradictions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
