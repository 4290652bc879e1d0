/* test_input_truncated_midrun.c - a GGUF input truncated by another process
 * while qpack is using it (the mapping then faults with SIGBUS): one line
 * naming the file, exit 1, and no output left behind, not even the temp
 * file. Runs the real binary and truncates the input from the shell after
 * a second, while the command is still working (the commands chosen take
 * many seconds). Release only: sanitizers install their own SIGBUS
 * handling. */
/* ctest-labels: slow */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/qp_test.h"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("truncated-midrun");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

/* Run `qpack ARGS` in the background, truncate FILE to 1 MiB after a second,
 * and return the command's result (stderr, exit code). */
static qp_run_result run_and_truncate(const char *file, const char *args)
{
    return qp_run_shell("'%s' %s >/dev/null & pid=$!; sleep 1; truncate -s 1M '%s'; wait $pid", QP_BINARY, args,
                        file);
}

static void assert_named_one_line(const qp_run_result *r, const char *file)
{
    if (r->exit_code != 1)
        print_error("exit %d, stderr: %s\n", r->exit_code, r->err);
    assert_int_equal(r->exit_code, 1);
    /* Exactly one line that is not a warning printed before the fault. */
    int errors = 0;
    for (const char *line = r->err; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (n > 0 && strncmp(line, "qpack: warning:", 15) != 0) {
            errors++;
            char buf[8192];
            snprintf(buf, sizeof buf, "%.*s", (int)n, line);
            assert_non_null(strstr(buf, file));
            assert_non_null(strstr(buf, "shrank"));
        }
        line += n + (end ? 1 : 0);
    }
    assert_int_equal(errors, 1);
}

static void test_ppl_names_the_truncated_model(void **state)
{
    (void)state;
    char model[4200], args[9000];
    snprintf(model, sizeof model, "%s/m-q8.gguf", g_dir);
    qp_run_qpack_ok("convert %s -o %s --type Q8_0 -q", qp_fixture("models/qwen3-moe-tiny"), model);
    snprintf(args, sizeof args, "ppl %s --text %s -t 2 -q", model, qp_fixture("text/eval.txt"));
    qp_run_result r = run_and_truncate(model, args);
    assert_named_one_line(&r, model);
    qp_run_free(&r);
}

static void test_quantize_removes_its_temp_output(void **state)
{
    (void)state;
    char in[4200], out[4200], imat[4200], cov[4200], args[20000];
    snprintf(in, sizeof in, "%s/m-bf16.gguf", g_dir);
    snprintf(out, sizeof out, "%s/out.gguf", g_dir);
    snprintf(imat, sizeof imat, "%s/imat.gguf", g_dir);
    snprintf(cov, sizeof cov, "%s/cov.gguf", g_dir);
    qp_run_qpack_ok("convert %s -o %s --type bf16 -q", qp_fixture("models/qwen3-moe-tiny"), in);
    qp_run_qpack_ok("calibrate %s --text %s --chunks 2 -o %s --covariance %s -q", in, qp_fixture("text/calib.txt"),
                    imat, cov);
    /* Error feedback makes the quantization take many seconds: the input
     * is still being read when it shrinks. */
    snprintf(args, sizeof args, "quantize %s %s Q4_K_M --imatrix %s --covariance %s -t 1 -q", in, out, imat, cov);
    qp_run_result r = run_and_truncate(in, args);
    assert_named_one_line(&r, in);
    qp_run_free(&r);
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    assert_false(qp_test_file_exists(out));
    assert_false(qp_test_file_exists(tmp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ppl_names_the_truncated_model),
        cmocka_unit_test(test_quantize_removes_its_temp_output),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
