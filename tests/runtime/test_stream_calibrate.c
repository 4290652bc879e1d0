/* test_stream_calibrate.c - layer-streamed calibration (calibrate.c's
 * calib_streamed over runtime-lite/stream.c) against the in-memory run on
 * calib.txt: every imatrix entry (sums and counts), the routed counts, the
 * forced flags, soft masses and the coverage chunk count are identical for
 * qwen3-moe-tiny (HF directory and a Q4_K_M GGUF, coverage pass forced by a
 * high threshold, and a threshold that flags only some experts) and for the
 * dense qwen3-tiny; `qpack calibrate --stream` writes the same file; the
 * combinations that need the model in memory are refused in one line. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/imatrix.h"
#include "runtime-lite/calibrate.h"
#include "runtime-lite/model.h"
#include "runtime-lite/stream.h"

#define CTX 64
#define CHUNKS 2

static int32_t *g_ids;
static int64_t g_n_ids;
static char *g_tmp;
static char g_moe_q4[1024];

static int setup(void **state)
{
    (void)state;
    g_ids = qp_test_read_ids("reference/tiny-tokenizer/calib.ids.i32", &g_n_ids);
    g_tmp = qp_test_tmpdir("stream-calib");
    if (!g_ids || !g_tmp)
        return -1;
    snprintf(g_moe_q4, sizeof g_moe_q4, "%s/moe-q4km.gguf", g_tmp);
    qp_run_qpack_ok("convert %s -o %s --type Q4_K_M -q -t 2", qp_fixture("models/qwen3-moe-tiny"), g_moe_q4);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_ids);
    qp_test_rmtree(g_tmp);
    free(g_tmp);
    return 0;
}

static void run(const char *path, int stream, int64_t min_tokens, qp_calib_result *r, qp_rt_stream_stats *stats)
{
    qp_rt_model *m = NULL;
    qp_err err;
    assert_int_equal(stream ? qp_rt_model_open_deferred(path, &m, &err) : qp_rt_model_open(path, &m, &err), QP_OK);
    const qp_rt_stream_opts o = {0, g_tmp, 1}; /* always spill: the zstd path */
    qp_calib_job job = {
        .model = m,
        .tokens = g_ids,
        .n_tokens = g_n_ids,
        .n_ctx = CTX,
        .max_chunks = CHUNKS,
        .n_threads = 2,
        .min_expert_tokens = min_tokens,
        .dataset = "calib.txt",
        .stream = stream ? &o : NULL,
        .stream_stats = stats,
    };
    qp_status st = qp_calib_run(&job, r, &err);
    qp_assert_ok(st, &err);
    qp_rt_model_free(m);
}

static void assert_same(const qp_calib_result *a, const qp_calib_result *b)
{
    assert_int_equal(a->n_chunks, b->n_chunks);
    assert_int_equal(a->n_forced, b->n_forced);
    assert_int_equal(a->coverage_chunks, b->coverage_chunks);
    const int64_t n = qp_imatrix_count(a->imatrix);
    assert_int_equal(n, qp_imatrix_count(b->imatrix));
    for (int64_t i = 0; i < n; i++) {
        assert_string_equal(qp_imatrix_name(a->imatrix, i), qp_imatrix_name(b->imatrix, i));
        const int64_t n_in = qp_imatrix_n_in(a->imatrix, i), ne = qp_imatrix_n_expert(a->imatrix, i);
        assert_int_equal(n_in, qp_imatrix_n_in(b->imatrix, i));
        assert_int_equal(ne, qp_imatrix_n_expert(b->imatrix, i));
        for (int64_t e = 0; e < ne; e++)
            if (qp_imatrix_rows(a->imatrix, i, e) != qp_imatrix_rows(b->imatrix, i, e))
                fail_msg("%s expert %lld: count %.17g vs %.17g", qp_imatrix_name(a->imatrix, i), (long long)e,
                         qp_imatrix_rows(a->imatrix, i, e), qp_imatrix_rows(b->imatrix, i, e));
        /* bit-identical sums: the same products see the same rows in the same order */
        assert_memory_equal(qp_imatrix_sums(a->imatrix, i), qp_imatrix_sums(b->imatrix, i),
                            (size_t)(n_in * ne) * sizeof(float));
    }
    const int64_t lne = a->n_layer * a->n_expert;
    assert_int_equal(lne, b->n_layer * b->n_expert);
    if (lne > 0) {
        assert_memory_equal(a->routed, b->routed, (size_t)lne * sizeof *a->routed);
        assert_memory_equal(a->forced, b->forced, (size_t)lne);
        assert_memory_equal(a->counts, b->counts, (size_t)lne * sizeof *a->counts);
        assert_memory_equal(a->soft_mass, b->soft_mass, (size_t)lne * sizeof *a->soft_mass);
    }
}

/* Returns the number of forced experts. */
static int64_t compare(const char *path, int64_t min_tokens)
{
    qp_calib_result a, b;
    qp_rt_stream_stats st;
    memset(&st, 0, sizeof st);
    run(path, 0, min_tokens, &a, NULL);
    run(path, 1, min_tokens, &b, &st);
    assert_same(&a, &b);
    assert_true(st.spilled && st.spill_peak_bytes > 0 && st.layer_bytes > 0);
    const int64_t n_forced = a.n_forced;
    assert_int_equal(a.coverage_chunks > 0, n_forced > 0); /* the coverage pass ran iff experts were flagged */
    qp_calib_result_free(&a);
    qp_calib_result_free(&b);
    return n_forced;
}

static void test_moe_hf_all_forced(void **state)
{
    (void)state;
    assert_int_equal(compare(qp_fixture("models/qwen3-moe-tiny"), 100000), 4 * 16); /* every expert */
}

static void test_moe_hf_some_forced(void **state)
{
    (void)state;
    /* the threshold flags some experts, not all */
    const int64_t n = compare(qp_fixture("models/qwen3-moe-tiny"), 24);
    assert_true(n > 0 && n < 4 * 16);
}

static void test_moe_q4_gguf(void **state)
{
    (void)state;
    assert_int_equal(compare(g_moe_q4, 100000), 4 * 16);
}

static void test_dense_hf(void **state)
{
    (void)state;
    assert_int_equal(compare(qp_fixture("models/qwen3-tiny"), 256), 0);
}

static void test_interrupt(void **state)
{
    (void)state;
    qp_rt_model *m = NULL;
    qp_err err;
    assert_int_equal(qp_rt_model_open_deferred(qp_fixture("models/qwen3-moe-tiny"), &m, &err), QP_OK);
    volatile sig_atomic_t cancel = 1;
    const qp_rt_stream_opts o = {0, g_tmp, 1};
    qp_calib_job job = {.model = m, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = CTX, .max_chunks = CHUNKS,
                        .n_threads = 1, .min_expert_tokens = 256, .progress = {NULL, NULL, &cancel}, .stream = &o};
    qp_calib_result r;
    assert_int_equal(qp_calib_run(&job, &r, &err), QP_ERR_INTERRUPTED);
    assert_null(r.imatrix);
    qp_rt_model_free(m);
}

static void test_cli(void **state)
{
    (void)state;
    const char *text = qp_fixture("text/calib.txt");
    qp_run_result a = qp_run_qpack("calibrate %s --text %s -o %s/mem.gguf -c %d --chunks %d -t 2 -q "
                                   "--min-expert-tokens 100000",
                                   g_moe_q4, text, g_tmp, CTX, CHUNKS);
    qp_run_result b = qp_run_qpack("calibrate %s --text %s -o %s/str.gguf -c %d --chunks %d -t 2 "
                                   "--min-expert-tokens 100000 --stream --spill-limit 0 --tmpdir %s",
                                   g_moe_q4, text, g_tmp, CTX, CHUNKS, g_tmp);
    assert_int_equal(a.exit_code, 0);
    assert_int_equal(b.exit_code, 0);
    assert_string_equal(a.out, b.out); /* the coverage table */
    assert_non_null(strstr(b.err, "peak RSS"));
    qp_run_free(&a);
    qp_run_free(&b);
    char pa[1100], pb[1100];
    snprintf(pa, sizeof pa, "%s/mem.gguf", g_tmp);
    snprintf(pb, sizeof pb, "%s/str.gguf", g_tmp);
    size_t na = 0, nb = 0;
    void *fa = qp_test_read_file(pa, &na), *fb = qp_test_read_file(pb, &nb);
    assert_non_null(fa);
    assert_non_null(fb);
    assert_int_equal(na, nb); /* the dataset name and every value: the same file */
    assert_memory_equal(fa, fb, na);
    free(fa);
    free(fb);

    const char *bad[] = {
        "--stream --sensitivity",     /* runs the whole model in memory */
        "--spill-limit 0",            /* needs --stream */
        "--stream --spill-limit -1",  /* not a size */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qp_run_result r = qp_run_qpack("calibrate %s --text %s -o %s/x.gguf -q %s", g_moe_q4, text, g_tmp, bad[i]);
        if (r.exit_code != 2 || qp_count_lines(r.err) != 1)
            fail_msg("'%s': exit %d, stderr: %s", bad[i], r.exit_code, r.err);
        qp_run_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moe_hf_all_forced),
        cmocka_unit_test(test_moe_hf_some_forced),
        cmocka_unit_test(test_moe_q4_gguf),
        cmocka_unit_test(test_dense_hf),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
