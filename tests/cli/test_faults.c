/* test_faults.c - qpack convert under faults: SIGINT/SIGTERM in the middle
 * of a conversion, the output file hitting RLIMIT_FSIZE, a source shard
 * truncated while it is being read, and allocations failing under
 * RLIMIT_AS. In every case the process ends by itself with a documented
 * status (130/143 interrupted, 1 I/O or memory, 2 bad input), one error
 * line naming the file, no crash, and neither the output file nor its
 * .tmp left behind. */
/* ctest-labels: fast */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support/qp_test.h"
#include "support/st_craft.h"
#include "support/tiny_ckpt.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define QP_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define QP_UNDER_SANITIZER 1
#endif
#endif

static char *g_root;
static char g_big[4096]; /* a checkpoint whose Q4_K conversion takes a while */

/* Big enough that a single-threaded Q4_K conversion runs for a few seconds
 * (more under the sanitizers), so signals and truncation land mid-run;
 * two shards so one can be cut while the other is being read. */
static int setup(void **state)
{
    (void)state;
    g_root = qp_test_tmpdir("faults");
    if (!g_root)
        return -1;
    snprintf(g_big, sizeof g_big, "%s/big", g_root);
    qp_tiny_ckpt c = {.n_layers = 3, .hidden = 512, .n_head = 8, .n_kv = 4, .head_dim = 64, .ffn = 1024,
                      .n_shards = 2};
    return qp_tiny_ckpt_write(g_big, &c);
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_root);
    free(g_root);
    return 0;
}

static const char *path_in(const char *name)
{
    static char buf[4][4096];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_root, name);
    return buf[slot];
}

static void assert_no_output(const char *out)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    if (qp_test_file_exists(out) || qp_test_file_exists(tmp))
        print_error("left behind: %s%s\n", qp_test_file_exists(out) ? out : "",
                    qp_test_file_exists(tmp) ? tmp : "");
    assert_false(qp_test_file_exists(out));
    assert_false(qp_test_file_exists(tmp));
}

typedef struct {
    pid_t pid;
    char err_path[4200];
} child;

/* Start `qpack convert SRC -o OUT --type Q4_K_M -t 1 -q` with stderr to a
 * file. */
static void start_convert(child *c, const char *src, const char *out)
{
    snprintf(c->err_path, sizeof c->err_path, "%s.stderr", out);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        int fd = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 2);
        execl(QP_BINARY, QP_BINARY, "convert", src, "-o", out, "--type", "Q4_K_M", "-t", "1", "-q",
              (char *)NULL);
        _exit(127);
    }
}

/* Wait until OUT.tmp exists (the header is written and tensor data is
 * being produced). Returns 0, or -1 if the child ended first. */
static int wait_for_tmp(const child *c, const char *out)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    for (int i = 0; i < 120000; i++) { /* 120 s at most */
        if (qp_test_file_exists(tmp))
            return 0;
        int status;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid)
            return -1;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* Wait for the child; returns its exit status, or 128+signal. */
static int finish(child *c, char **err_text)
{
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
    }
    *err_text = qp_test_read_file(c->err_path, NULL);
    unlink(c->err_path);
    if (getenv("QP_TEST_VERBOSE") && *err_text)
        printf("stderr: %s", *err_text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void interrupt_case(int sig, int want_exit, const char *name)
{
    const char *out = path_in(name);
    child c;
    start_convert(&c, g_big, out);
    if (wait_for_tmp(&c, out) != 0) {
        char *e = NULL;
        finish(&c, &e);
        print_error("conversion ended before it could be interrupted: %s\n", e ? e : "");
        free(e);
        fail();
    }
    assert_int_equal(kill(c.pid, sig), 0);
    char *err = NULL;
    int code = finish(&c, &err);
    if (code != want_exit)
        print_error("signal %d: exit %d, stderr: %s\n", sig, code, err ? err : "");
    assert_int_equal(code, want_exit);
    assert_non_null(err);
    assert_int_equal(qp_count_lines(err), 1);
    assert_non_null(strstr(err, "interrupt"));
    free(err);
    assert_no_output(out);
}

static void test_sigint_during_convert(void **state)
{
    (void)state;
    interrupt_case(SIGINT, 130, "sigint.gguf");
}

static void test_sigterm_during_convert(void **state)
{
    (void)state;
    interrupt_case(SIGTERM, 143, "sigterm.gguf");
}

/* The first shard (token_embd and the first layers, what the converter
 * reads first) is cut to a quarter while the converter is stopped just
 * after it validated every header and began writing: most of what it still
 * has to read is gone. Stopping the process makes the order deterministic;
 * within the millisecond before the stop it cannot have read 3/4 of the
 * shard. */
static void test_shard_truncated_during_convert(void **state)
{
    (void)state;
    const char *out = path_in("trunc.gguf");
    char shard[4200];
    snprintf(shard, sizeof shard, "%s/%s", g_big, st_craft_shard_name(0, 2));
    struct stat sb;
    assert_int_equal(stat(shard, &sb), 0);
    /* Work on a copy of the checkpoint so the other tests keep theirs. */
    const char *dir = path_in("trunc-src");
    qp_run_result cp = qp_run_shell("cp -r '%s' '%s'", g_big, dir);
    assert_int_equal(cp.exit_code, 0);
    qp_run_free(&cp);
    snprintf(shard, sizeof shard, "%s/%s", dir, st_craft_shard_name(0, 2));

    child c;
    start_convert(&c, dir, out);
    assert_int_equal(wait_for_tmp(&c, out), 0);
    assert_int_equal(kill(c.pid, SIGSTOP), 0);
    assert_int_equal(truncate(shard, sb.st_size / 4), 0);
    assert_int_equal(kill(c.pid, SIGCONT), 0);
    char *err = NULL;
    int code = finish(&c, &err);
    if (code != 2 && code != 1)
        print_error("exit %d, stderr: %s\n", code, err ? err : "");
    assert_true(code == 1 || code == 2); /* not SIGBUS (135) nor success */
    assert_non_null(err);
    assert_int_equal(qp_count_lines(err), 1);
    assert_non_null(strstr(err, shard));
    free(err);
    assert_no_output(out);
}

/* Output limited to 1 MB: the quantized file is larger, so a write fails
 * with EFBIG (SIGXFSZ is ignored by qpack). */
static void fsize_case(const char *type, const char *name)
{
    const char *out = path_in(name);
    qp_run_result r = qp_run_shell("ulimit -f 1024; exec '%s' convert %s -o %s --type %s -q", QP_BINARY,
                                   qp_fixture("models/qwen3-tiny"), out, type);
    if (r.exit_code != 1)
        print_error("%s: exit %d: %s\n", type, r.exit_code, r.err);
    assert_int_equal(r.exit_code, 1);
    assert_int_equal(qp_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, out));
    qp_run_free(&r);
    assert_no_output(out);
}

static void test_write_failure_quantized(void **state)
{
    (void)state;
    fsize_case("Q8_0", "efbig-q8.gguf");
    fsize_case("Q4_K_M", "efbig-q4km.gguf");
    fsize_case("f16", "efbig-f16.gguf");
}

/* Address space limited from 4 MB up to 48 MB in 2 MB steps: allocations
 * fail in turn while reading tokenizer.json, parsing it, building the
 * vocabulary and converting tensors, until the whole conversion fits. Each
 * run must either convert correctly or fail cleanly (exit 1, one line,
 * nothing written) - never crash, and never call a failed allocation bad
 * input. Below a few MB the dynamic loader itself cannot map libc; those
 * runs are not ours and are skipped. Sanitizer runtimes reserve terabytes
 * of address space, so this runs only in plain builds. */
static void test_allocation_failure(void **state)
{
    (void)state;
#ifdef QP_UNDER_SANITIZER
    skip();
#else
    int failed = 0, succeeded = 0;
    for (int mb = 4; mb <= 48; mb += 2) {
        char name[64];
        snprintf(name, sizeof name, "as-%d.gguf", mb);
        const char *out = path_in(name);
        qp_run_result r = qp_run_shell("ulimit -v %d; exec '%s' convert %s -o %s --type Q8_0 -t 2 -q", mb * 1024,
                                       QP_BINARY, qp_fixture("models/qwen3-tiny"), out);
        if (strstr(r.err, "error while loading shared libraries")) {
            qp_run_free(&r);
            continue;
        }
        if (r.exit_code == 0) {
            succeeded++;
            assert_true(qp_test_file_exists(out));
            qp_run_result v = qp_run_qpack("verify %s -q", out);
            assert_int_equal(v.exit_code, 0);
            qp_run_free(&v);
            remove(out);
        } else {
            failed++;
            if (r.exit_code != 1 || qp_count_lines(r.err) != 1)
                print_error("RLIMIT_AS %d MB: exit %d: %s\n", mb, r.exit_code, r.err);
            assert_int_equal(r.exit_code, 1);
            assert_int_equal(qp_count_lines(r.err), 1);
            assert_true(strncmp(r.err, "qpack: ", 7) == 0);
            assert_non_null(strstr(r.err, "out of memory"));
            assert_no_output(out);
        }
        qp_run_free(&r);
    }
    /* The sweep must cover both sides, or it tested nothing. */
    assert_true(failed > 0);
    assert_true(succeeded > 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigint_during_convert),
        cmocka_unit_test(test_sigterm_during_convert),
        cmocka_unit_test(test_shard_truncated_during_convert),
        cmocka_unit_test(test_write_failure_quantized),
        cmocka_unit_test(test_allocation_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
