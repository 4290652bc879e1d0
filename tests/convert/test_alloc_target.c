/* test_alloc_target.c - size-targeted allocation end to end on qwen3-tiny:
 * `calibrate --sensitivity` stores qpack.sens.* keys; `convert --target-bpw
 * --dry-run` prints a plan within the budget, the same for any thread
 * count, with a predicted loss that does not rise with the budget;
 * `--target-size` writes a file no larger than the target and records the
 * qpack.alloc.* keys; impossible budgets and missing sensitivity data are
 * one-line errors. Calibration runs on a few short chunks to stay fast. */
/* ctest-labels: fast */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "convert/sensitivity.h"
#include "format/gguf.h"
#include "support/qp_test.h"

static char *g_dir;
static char g_model[4096], g_calib[4096], g_sens[4096], g_plain[4096];

static const char *tmp(const char *name)
{
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 4096, "%s/%s", g_dir, name);
    return p;
}

static int setup(void **state)
{
    (void)state;
    if (!(g_dir = qp_test_tmpdir("alloc-target")))
        return -1;
    snprintf(g_model, sizeof g_model, "%s", qp_fixture("models/qwen3-tiny"));
    /* the first 16 KB of the calibration text: 4 chunks of 128 tokens, quick to tokenize */
    size_t n = 0;
    char *text = qp_test_read_file(qp_fixture("text/calib.txt"), &n);
    snprintf(g_calib, sizeof g_calib, "%s", tmp("calib16k.txt"));
    int wrote = text && qp_test_write_file(g_calib, text, n < 16384 ? n : 16384) == 0;
    free(text);
    if (!wrote)
        return -1;
    snprintf(g_sens, sizeof g_sens, "%s", tmp("sens.gguf"));
    /* a llama.cpp-style matrix for this model, without qpack.sens.* keys */
    snprintf(g_plain, sizeof g_plain, "%s", qp_fixture("ggml-vectors/imatrix-calib.gguf"));
    qp_run_qpack_ok("calibrate %s --text %s -o %s -c 128 --chunks 4 --sensitivity --sens-chunks 1 -t 2 -q", g_model,
                    g_calib, g_sens);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static unsigned long long after(const char *s, const char *prefix)
{
    const char *p = strstr(s, prefix);
    assert_non_null(p);
    return strtoull(p + strlen(prefix), NULL, 10);
}

static double kld_of(const char *s)
{
    const char *p = strstr(s, "mean KLD ");
    assert_non_null(p);
    return strtod(p + 9, NULL);
}

static void test_sensitivity_keys(void **state)
{
    (void)state;
    qp_sens *s = NULL;
    qp_err e;
    assert_int_equal(qp_sens_read(g_sens, &s, &e), QP_OK);
    assert_int_equal(s->n, 4 * 7 + 1); /* 7 matrices per layer + the tied token_embd */
    assert_int_equal(s->n_chunks, 1);
    assert_int_equal(s->n_ctx, 128);
    assert_true(qp_sens_find(s, "token_embd.weight") >= 0);
    assert_true(qp_sens_find(s, "blk.3.ffn_down.weight") >= 0);
    assert_true(qp_sens_find(s, "blk.0.attn_norm.weight") < 0);
    int positive = 0;
    for (int64_t k = 0; k < s->n; k++) {
        assert_true(s->err[k] > 0);
        positive += s->coef[k] > 0;
    }
    assert_true(positive > s->n / 2);
    qp_sens_free(s);
    /* llama.cpp's part of the file is still there */
    qp_gguf *g = NULL;
    assert_int_equal(qp_gguf_open(g_sens, &g, &e), QP_OK);
    assert_true(qp_gguf_find_key(g, "imatrix.chunk_count") >= 0);
    assert_non_null(qp_gguf_find_tensor(g, "blk.0.attn_q.weight.in_sum2"));
    qp_gguf_close(g);
    assert_int_equal(qp_sens_read(g_plain, &s, &e), QP_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "calibrate --sensitivity"));
    assert_null(s);
}

static void test_dry_run_plan(void **state)
{
    (void)state;
    qp_run_result a = qp_run_qpack("convert %s --imatrix %s --target-bpw 4 --dry-run -t 1", g_model, g_sens);
    assert_int_equal(a.exit_code, 0);
    qp_run_result b = qp_run_qpack("convert %s --imatrix %s --target-bpw 4 --dry-run -t 2", g_model, g_sens);
    assert_int_equal(b.exit_code, 0);
    assert_string_equal(a.out, b.out); /* same plan for any thread count */
    assert_non_null(strstr(a.out, "pred.kld"));
    unsigned long long total = after(a.out, "total: ");
    unsigned long long budget = after(a.out, "bits per weight = ");
    assert_true(total <= budget);
    assert_true(total > budget - budget / 50); /* and uses it */
    assert_int_equal(after(a.out, "predicted: "), total);
    /* every matrix gets a candidate type, norms stay F32 */
    int mats = 0;
    for (const char *p = strstr(a.out, "blk."); p; p = strstr(p + 1, "\nblk.")) {
        char name[96], shape1[32], type[16];
        if (sscanf(p[0] == '\n' ? p + 1 : p, "%95s %31s %*s %15s", name, shape1, type) != 3)
            continue;
        if (strstr(name, "norm"))
            continue;
        mats++;
        assert_true(!strcmp(type, "Q2_K") || !strcmp(type, "Q3_K") || !strcmp(type, "Q4_K") ||
                    !strcmp(type, "Q5_K") || !strcmp(type, "Q6_K") || !strcmp(type, "Q8_0"));
    }
    assert_int_equal(mats, 28);
    /* a larger budget never predicts a higher loss */
    qp_run_result lo = qp_run_qpack("convert %s --imatrix %s --target-bpw 3 --dry-run", g_model, g_sens);
    qp_run_result hi = qp_run_qpack("convert %s --imatrix %s --target-bpw 6.5 --dry-run", g_model, g_sens);
    assert_int_equal(lo.exit_code, 0);
    assert_int_equal(hi.exit_code, 0);
    assert_true(kld_of(lo.out) > kld_of(a.out));
    assert_true(kld_of(a.out) > kld_of(hi.out));
    assert_true(after(lo.out, "total: ") < total && total < after(hi.out, "total: "));
    qp_run_free(&lo);
    qp_run_free(&hi);
    qp_run_free(&a);
    qp_run_free(&b);
}

static unsigned long long file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (unsigned long long)sb.st_size;
}

static void test_target_size_file(void **state)
{
    (void)state;
    const char *preset = tmp("q3km.gguf"), *out = tmp("sized.gguf");
    qp_run_qpack_ok("convert %s -o %s --type Q3_K_M --imatrix %s -q", g_model, preset, g_sens);
    const unsigned long long target = file_size(preset);
    qp_run_result r =
        qp_run_qpack("convert %s -o %s --target-size %llu --imatrix %s -t 2", g_model, out, target, g_sens);
    if (r.exit_code != 0)
        fail_msg("convert --target-size: %s", r.err);
    assert_non_null(strstr(r.out, "predicted: "));
    qp_run_free(&r);
    const unsigned long long got = file_size(out);
    assert_true(got <= target);
    assert_true(got > target - target / 50);
    qp_gguf *g = NULL;
    qp_err e;
    assert_int_equal(qp_gguf_open(out, &g, &e), QP_OK);
    uint64_t v = 0;
    assert_true(qp_gguf_get_u64(g, "qpack.alloc.target_size", &v));
    assert_int_equal(v, target);
    assert_true(qp_gguf_get_u64(g, "qpack.alloc.tensor_bytes", &v) && v > 0);
    qp_gguf_str rec;
    assert_true(qp_gguf_get_str(g, "qpack.recipe", &rec));
    assert_true(rec.len > 11 && memcmp(rec.ptr, "target-size", 11) == 0);
    qp_gguf_close(g);
    r = qp_run_qpack("inspect %s", out);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "qpack.alloc.predicted_kld"));
    qp_run_free(&r);
}

static void expect_error(const char *args_fmt, const char *imatrix, const char *needle)
{
    char args[2048];
    snprintf(args, sizeof args, args_fmt, imatrix);
    qp_run_result r = qp_run_qpack("convert %s %s --dry-run", g_model, args);
    assert_int_equal(r.exit_code, 2);
    if (!strstr(r.err, needle))
        fail_msg("'%s': expected '%s' in: %s", args, needle, r.err);
    assert_int_equal(qp_count_lines(r.err), 1);
    qp_run_free(&r);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("--imatrix %s --target-bpw 1", g_sens, "below the smallest possible");
    expect_error("--imatrix %s --target-size 200K", g_sens, "below the smallest possible file");
    expect_error("--imatrix %s --target-bpw 4", g_plain, "no sensitivity data");
    expect_error("--target-bpw 4%s", "", "needs --imatrix");
    expect_error("--imatrix %s --target-bpw 4 --type Q4_K_M", g_sens, "exclude each other");
    expect_error("--imatrix %s --target-bpw 4 --pure", g_sens, "cannot be combined");
    expect_error("--imatrix %s --target-bpw x", g_sens, "--target-bpw needs");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sensitivity_keys),
        cmocka_unit_test(test_dry_run_plan),
        cmocka_unit_test(test_target_size_file),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
