/* test_cli_errors.c - bad input through the qpack binary: each case gets a
 * one-line error that names the file and the problem, exit status 2, and no
 * output file (final or temporary) left behind. */
/* ctest-labels: fast */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/qp_test.h"
#include "support/st_craft.h"
#include "support/tiny_ckpt.h"

static char *g_root;

static int setup(void **state)
{
    (void)state;
    g_root = qp_test_tmpdir("cli-errors");
    return g_root ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_root);
    free(g_root);
    return 0;
}

/* Run convert on dir; expect exit 2, one line naming `must_name` and
 * containing `problem`, and no output file. */
static void expect_bad(const char *dir, const char *must_name, const char *problem)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/out.gguf", g_root);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q", dir, out);
    if (r.exit_code != 2 || !strstr(r.err, must_name) || !strstr(r.err, problem) || qp_count_lines(r.err) != 1)
        print_error("case %s: exit %d, stderr: %s", problem, r.exit_code, r.err);
    assert_int_equal(r.exit_code, 2);
    assert_int_equal(qp_count_lines(r.err), 1);
    assert_true(strncmp(r.err, "qpack: ", 7) == 0);
    assert_non_null(strstr(r.err, must_name));
    assert_non_null(strstr(r.err, problem));
    assert_false(qp_test_file_exists(out));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    assert_false(qp_test_file_exists(tmp));
    qp_run_free(&r);
}

static char *case_dir(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", g_root, name);
    return buf;
}

static void test_valid_tiny_converts(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {0};
    const char *dir = case_dir("valid");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    char out[4096];
    snprintf(out, sizeof out, "%s/valid.gguf", g_root);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q", dir, out);
    if (r.exit_code)
        print_error("%s", r.err);
    assert_int_equal(r.exit_code, 0);
    assert_true(qp_test_file_exists(out));
    qp_run_free(&r);
    qp_tiny_ckpt m = {.moe = 1, .n_layers = 2, .n_shards = 3};
    dir = case_dir("valid-moe");
    assert_int_equal(qp_tiny_ckpt_write(dir, &m), 0);
    snprintf(out, sizeof out, "%s/valid-moe.gguf", g_root);
    r = qp_run_qpack("convert %s -o %s -q", dir, out);
    if (r.exit_code)
        print_error("%s", r.err);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
}

static int drop_named(void *ctx, st_craft_tensor *t) { return strcmp(t->name, (const char *)ctx) == 0; }

static void test_missing_tensor(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {.mutate = drop_named, .mutate_ctx = "model.layers.0.self_attn.q_proj.weight"};
    const char *dir = case_dir("missing");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    expect_bad(dir, dir, "lacks self_attn.q_proj.weight of layer 0");
}

static int wrong_shape(void *ctx, st_craft_tensor *t)
{
    (void)ctx;
    if (strcmp(t->name, "model.layers.0.self_attn.k_proj.weight") == 0) {
        t->shape[0] = 64; /* config says 1 kv head x 32 */
        t->values = NULL;
    }
    return 0;
}

static void test_shape_contradicts_config(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {.mutate = wrong_shape};
    const char *dir = case_dir("shape");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    expect_bad(dir, "model.layers.0.self_attn.k_proj.weight", "config implies");
}

static void test_unknown_tensor(void **state)
{
    (void)state;
    st_craft_tensor extra = {.name = "model.layers.0.mystery.weight", .dtype = "BF16", .n_dims = 1, .shape = {4}};
    qp_tiny_ckpt c = {.extra = &extra, .n_extra = 1};
    const char *dir = case_dir("unknown");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    expect_bad(dir, "model.layers.0.mystery.weight", "unrecognised tensor");
}

static void test_expert_count_contradicts_config(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {.moe = 1, .config_extra = "\"num_experts_dummy\": 0"};
    const char *dir = case_dir("experts");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    /* rewrite config with fewer experts than the tensors have */
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t n;
    char *cfg = qp_test_read_file(path, &n);
    char *p = strstr(cfg, "\"num_experts\": 4");
    assert_non_null(p);
    p[strlen("\"num_experts\": ")] = '3';
    assert_int_equal(qp_test_write_file(path, cfg, n), 0);
    free(cfg);
    expect_bad(dir, "experts.3", "past num_experts");
}

static void test_truncated_shard(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {0};
    const char *dir = case_dir("trunc");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(st_craft_truncate(path, 4000), 0);
    expect_bad(dir, path, "");
}

static void test_header_length_past_file(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {0};
    const char *dir = case_dir("hdrlen");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(st_craft_set_header_len(path, 1ull << 40), 0);
    expect_bad(dir, path, "header");
}

static void test_bad_config(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {0};
    const char *dir = case_dir("badcfg");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    static const char bad[] = "{\"architectures\": [\"Qwen3ForCausalLM\"], \"hidden_size\": \"64\"";
    assert_int_equal(qp_test_write_file(path, bad, sizeof bad - 1), 0);
    expect_bad(dir, "config.json", "");
}

static void test_missing_shard(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {.n_shards = 2};
    const char *dir = case_dir("noshard");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, st_craft_shard_name(1, 2));
    assert_int_equal(remove(path), 0);
    expect_bad(dir, st_craft_shard_name(1, 2), "");
}

static void test_not_a_directory(void **state)
{
    (void)state;
    expect_bad("/nonexistent/qpack-model", "/nonexistent/qpack-model", "");
}

static void test_usage_errors(void **state)
{
    (void)state;
    qp_run_result r = qp_run_qpack("convert");
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("convert %s -o /tmp/x.gguf --type Q9_Z", qp_fixture("models/qwen3-tiny"));
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "Q9_Z"));
    qp_run_free(&r);
    r = qp_run_qpack("frobnicate");
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    static const char *cmds[] = {"convert", "inspect", "verify", "quantize", "ppl", "generate", "calibrate", "report"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        r = qp_run_qpack("%s --help", cmds[i]);
        if (r.exit_code != 0)
            print_error("%s --help: exit %d\n", cmds[i], r.exit_code);
        assert_int_equal(r.exit_code, 0);
        assert_non_null(strstr(r.out, "usage: qpack"));
        qp_run_free(&r);
    }
}

static void test_verify_detects_corruption(void **state)
{
    (void)state;
    qp_tiny_ckpt c = {0};
    const char *dir = case_dir("corrupt");
    assert_int_equal(qp_tiny_ckpt_write(dir, &c), 0);
    char out[4200];
    snprintf(out, sizeof out, "%s/corrupt.gguf", g_root);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q", dir, out);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
    size_t n;
    unsigned char *d = qp_test_read_file(out, &n);
    d[n - 3] ^= 0x40; /* inside the last tensor's data */
    assert_int_equal(qp_test_write_file(out, d, n), 0);
    free(d);
    r = qp_run_qpack("verify %s", out);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, out));
    assert_non_null(strstr(r.err, "output_norm.weight"));
    qp_run_free(&r);
}

static void test_write_failure_leaves_nothing(void **state)
{
    (void)state;
    char out[4200];
    snprintf(out, sizeof out, "%s/efbig.gguf", g_root);
    /* 1 MB file size limit: the 10 MB conversion fails with EFBIG. */
    qp_run_result r = qp_run_shell("ulimit -f 1024; exec '%s' convert %s -o %s -q", QP_BINARY,
                                   qp_fixture("models/qwen3-tiny"), out);
    if (r.exit_code != 1)
        print_error("exit %d: %s\n", r.exit_code, r.err);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(qp_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, out));
    assert_false(qp_test_file_exists(out));
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    assert_false(qp_test_file_exists(tmp));
    qp_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_tiny_converts),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_shape_contradicts_config),
        cmocka_unit_test(test_unknown_tensor),
        cmocka_unit_test(test_expert_count_contradicts_config),
        cmocka_unit_test(test_truncated_shard),
        cmocka_unit_test(test_header_length_past_file),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_missing_shard),
        cmocka_unit_test(test_not_a_directory),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_verify_detects_corruption),
        cmocka_unit_test(test_write_failure_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
