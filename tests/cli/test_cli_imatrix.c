/* test_cli_imatrix.c - `qpack imatrix merge|convert|info`: merging two
 * matrices adds sums and counts per expert, conversions between GGUF and
 * .dat, the listing, and usage / bad-input exits. */
/* ctest-labels: fast */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/imatrix.h"
#include "support/qp_test.h"

#define DENSE "ggml-vectors/imatrix-calib.gguf"
#define MOE "ggml-vectors/imatrix-calib-moe.gguf"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("cli-imatrix");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static const char *tmp(const char *name)
{
    static char buf[8][4096];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, 4096, "%s/%s", g_dir, name);
    return p;
}

static qp_imatrix *load(const char *path)
{
    qp_imatrix *m = NULL;
    assert_int_equal(qp_imatrix_read(path, &m, NULL), QP_OK);
    return m;
}

static void expect_exit(qp_run_result r, int code, const char *word)
{
    if (r.exit_code != code || (word && !strstr(r.err, word)))
        fail_msg("exit %d (wanted %d), stderr: %s (wanted \"%s\")", r.exit_code, code, r.err, word ? word : "");
    qp_run_free(&r);
}

static void test_merge(void **state)
{
    (void)state;
    const char *out = tmp("merged.gguf");
    qp_run_result r = qp_run_qpack("imatrix merge %s %s %s -o %s", qp_fixture(MOE), qp_fixture(DENSE), qp_fixture(MOE),
                                   out);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "wrote "));
    qp_run_free(&r);
    qp_imatrix *m = load(out), *moe = load(qp_fixture(MOE)), *dense = load(qp_fixture(DENSE));
    /* The union of the entries (attention entries are shared by name). */
    int64_t shared = 0;
    for (int64_t i = 0; i < qp_imatrix_count(dense); i++)
        shared += qp_imatrix_find(moe, qp_imatrix_name(dense, i)) >= 0;
    assert_int_equal(shared, 16);
    assert_int_equal(qp_imatrix_count(m), qp_imatrix_count(moe) + qp_imatrix_count(dense) - shared);
    assert_int_equal(qp_imatrix_chunk_count(m), 3 * 114);
    assert_int_equal(qp_imatrix_dataset_count(m), 3);
    /* Expert rows add up; expert 13 of layer 1 still has none. */
    int64_t k = qp_imatrix_find(m, "blk.1.ffn_up_exps.weight"), j = qp_imatrix_find(moe, "blk.1.ffn_up_exps.weight");
    for (int64_t x = 0; x < 16; x++)
        assert_true(qp_imatrix_rows(m, k, x) == 2 * qp_imatrix_rows(moe, j, x));
    assert_true(qp_imatrix_rows(m, k, 13) == 0);
    k = qp_imatrix_find(m, "blk.0.attn_q.weight");
    assert_true(qp_imatrix_rows(m, k, 0) == 3 * 114 * 512);
    qp_imatrix_free(m);
    qp_imatrix_free(moe);
    qp_imatrix_free(dense);

    /* Existing output, shape clashes, usage. */
    expect_exit(qp_run_qpack("imatrix merge %s %s -o %s", qp_fixture(MOE), qp_fixture(MOE), out), 2, "output exists");
    const char *dat = tmp("moe.dat");
    expect_exit(qp_run_qpack("imatrix convert %s -o %s", qp_fixture(MOE), dat), 0, NULL);
    /* The legacy file has no expert split: 4096 flat columns vs 256 x 16. */
    expect_exit(qp_run_qpack("imatrix merge %s %s -o %s", qp_fixture(MOE), dat, tmp("clash.gguf")), 2,
                "blk.0.ffn_down_exps.weight");
    expect_exit(qp_run_qpack("imatrix merge %s -o %s", qp_fixture(MOE), tmp("one.gguf")), 2, "at least two");
    expect_exit(qp_run_qpack("imatrix merge %s %s", qp_fixture(MOE), qp_fixture(MOE)), 2, "missing -o");
    expect_exit(qp_run_qpack("imatrix frob %s", qp_fixture(MOE)), 2, "unknown action");
    expect_exit(qp_run_qpack("imatrix"), 2, "missing the action");
    expect_exit(qp_run_qpack("imatrix merge %s %s -o %s", qp_fixture(MOE), tmp("nope.gguf"), tmp("x.gguf")), 2,
                "nope.gguf");
    expect_exit(qp_run_qpack("imatrix info %s", qp_fixture("models/qwen3-tiny/config.json")), 2, "config.json");
}

static void test_convert_and_info(void **state)
{
    (void)state;
    const char *dat = tmp("dense.dat"), *back = tmp("back.gguf"), *dat2 = tmp("dense2.imatrix");
    expect_exit(qp_run_qpack("imatrix convert %s -o %s", qp_fixture(DENSE), dat), 0, NULL);
    expect_exit(qp_run_qpack("imatrix convert %s -o %s", dat, back), 0, NULL);
    expect_exit(qp_run_qpack("imatrix convert %s -o %s --format dat", back, dat2), 0, NULL);
    qp_imatrix *a = load(dat), *b = load(back), *c = load(dat2);
    assert_int_equal(qp_imatrix_source_format(a), QP_IMATRIX_FORMAT_LEGACY);
    assert_int_equal(qp_imatrix_source_format(b), QP_IMATRIX_FORMAT_GGUF);
    assert_int_equal(qp_imatrix_source_format(c), QP_IMATRIX_FORMAT_LEGACY);
    assert_int_equal(qp_imatrix_count(b), 28);
    assert_int_equal(qp_imatrix_chunk_count(b), 114);
    size_t n1, n2;
    void *f1 = qp_test_read_file(dat, &n1), *f2 = qp_test_read_file(dat2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(f1, f2, n1); /* .dat -> gguf -> .dat keeps the bytes */
    free(f1);
    free(f2);
    qp_imatrix_free(a);
    qp_imatrix_free(b);
    qp_imatrix_free(c);
    expect_exit(qp_run_qpack("imatrix convert %s -o %s --format xml", dat, tmp("y")), 2, "--format");

    qp_run_result r = qp_run_qpack("imatrix info %s", qp_fixture(MOE));
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "GGUF importance matrix, 32 entries, 114 chunks of 512 tokens"));
    assert_non_null(strstr(r.out, "calib.txt"));
    /* One line per entry; the never-routed expert is named. */
    const char *line = strstr(r.out, "blk.1.ffn_gate_exps.weight");
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    assert_non_null(eol);
    assert_true(eol - line > 2 && memcmp(eol - 3, " 13", 3) == 0);
    line = strstr(r.out, "blk.0.ffn_gate_exps.weight");
    assert_non_null(line);
    eol = strchr(line, '\n');
    assert_true(eol && eol[-1] == ' '); /* every expert of layer 0 saw rows */
    qp_run_free(&r);
    r = qp_run_qpack("imatrix --help");
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "usage: qpack imatrix merge"));
    qp_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_convert_and_info),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
