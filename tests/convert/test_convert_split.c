/* test_convert_split.c - split output in llama.cpp's gguf-split conventions,
 * distributed shards producing the same set as one process, and --resume
 * after a conversion killed at arbitrary moments. */
/* ctest-labels: fast */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "format/gguf.h"
#include "support/qp_test.h"

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("convert-split");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

#define MODEL "models/qwen3-moe-tiny"
#define SPLIT "--split-max-size 8M"

static int count_files(const char *stem)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls %s-*-of-*.gguf 2>/dev/null | wc -l", stem);
    qp_run_result r = qp_run_shell("%s", cmd);
    int n = atoi(r.out);
    qp_run_free(&r);
    return n;
}

static void assert_same_files(const char *stem_a, const char *stem_b, int n)
{
    for (int k = 1; k <= n; k++) {
        char a[4200], b[4200];
        snprintf(a, sizeof a, "%s-%05d-of-%05d.gguf", stem_a, k, n);
        snprintf(b, sizeof b, "%s-%05d-of-%05d.gguf", stem_b, k, n);
        size_t na, nb;
        void *da = qp_test_read_file(a, &na), *db = qp_test_read_file(b, &nb);
        assert_non_null(da);
        assert_non_null(db);
        assert_int_equal(na, nb);
        assert_memory_equal(da, db, na);
        free(da);
        free(db);
    }
}

static void test_split_set_matches_single_file(void **state)
{
    (void)state;
    char single[4096], stem[4096];
    snprintf(single, sizeof single, "%s/single.gguf", g_dir);
    snprintf(stem, sizeof stem, "%s/set", g_dir);
    qp_run_qpack_ok("convert %s -o %s -q", qp_fixture(MODEL), single);
    qp_run_qpack_ok("convert %s -o %s.gguf %s -q", qp_fixture(MODEL), stem, SPLIT);
    int n = count_files(stem);
    assert_true(n >= 3);
    qp_gguf *one = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(single, &one, &err), QP_OK);
    int64_t seen = 0;
    for (int k = 1; k <= n; k++) {
        char path[4200];
        snprintf(path, sizeof path, "%s-%05d-of-%05d.gguf", stem, k, n);
        qp_gguf *g = NULL;
        assert_int_equal(qp_gguf_open(path, &g, &err), QP_OK);
        uint64_t v;
        assert_true(qp_gguf_get_u64(g, "split.no", &v));
        assert_int_equal(v, k - 1);
        assert_true(qp_gguf_get_u64(g, "split.count", &v));
        assert_int_equal(v, n);
        assert_true(qp_gguf_get_u64(g, "split.tensors.count", &v));
        assert_int_equal(v, qp_gguf_tensor_count(one));
        assert_int_equal(qp_gguf_verify_checksums(g, &err), QP_OK);
        /* metadata in the first file only, as gguf-split does */
        assert_int_equal(qp_gguf_find_key(g, "general.architecture") >= 0, k == 1);
        for (int64_t i = 0; i < qp_gguf_tensor_count(g); i++) {
            const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
            const qp_gguf_tensor *ref = qp_gguf_tensor_at(one, seen++); /* same order */
            assert_non_null(ref);
            assert_int_equal(t->name.len, ref->name.len);
            assert_memory_equal(t->name.ptr, ref->name.ptr, t->name.len);
            assert_int_equal(t->nbytes, ref->nbytes);
            assert_memory_equal(t->data, ref->data, t->nbytes);
        }
        qp_gguf_close(g);
    }
    assert_int_equal(seen, qp_gguf_tensor_count(one));
    qp_gguf_close(one);
    /* --split-max-tensors */
    qp_run_qpack_ok("convert %s -o %s/few.gguf --split-max-tensors 10 -q", qp_fixture(MODEL), g_dir);
    snprintf(stem, sizeof stem, "%s/few", g_dir);
    assert_int_equal(count_files(stem), (int)((seen + 9) / 10));
}

static void test_shards_equal_one_process(void **state)
{
    (void)state;
    char stem[4096];
    snprintf(stem, sizeof stem, "%s/sharded", g_dir);
    for (int i = 1; i <= 3; i++) {
        qp_run_qpack_ok("convert %s -o %s.gguf %s --shard %d/3 -q -t %d", qp_fixture(MODEL), stem, SPLIT, i,
                        1 + i % 2);
    }
    char ref[4096];
    snprintf(ref, sizeof ref, "%s/set", g_dir);
    int n = count_files(ref);
    assert_int_equal(count_files(stem), n);
    assert_same_files(ref, stem, n);
}

static void test_gnu_parallel(void **state)
{
    (void)state;
    qp_run_result r = qp_run_shell("command -v parallel");
    int have = r.exit_code == 0;
    qp_run_free(&r);
    if (!have) {
        print_message("SKIP: GNU parallel is not installed\n");
        skip();
    }
    char stem[4096], ref[4096];
    snprintf(stem, sizeof stem, "%s/par", g_dir);
    snprintf(ref, sizeof ref, "%s/set", g_dir);
    r = qp_run_shell("parallel --will-cite -j 3 '%s' convert %s -o %s.gguf %s --shard {}/3 -q ::: 1 2 3", QP_BINARY,
                     qp_fixture(MODEL), stem, SPLIT);
    if (r.exit_code != 0)
        print_error("%s%s\n", r.out, r.err);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
    int n = count_files(ref);
    assert_int_equal(count_files(stem), n);
    assert_same_files(ref, stem, n);
}

/* kill -9 at different moments: a final-named file is always complete,
 * and --resume finishes the set to the identical result. */
static void test_kill_and_resume(void **state)
{
    (void)state;
    char stem[4096], ref[4096], out[4200];
    snprintf(ref, sizeof ref, "%s/set", g_dir);
    int n = count_files(ref);
    static const int delays_us[] = {0, 2000, 5000, 10000, 20000, 40000};
    for (size_t d = 0; d < sizeof delays_us / sizeof delays_us[0]; d++) {
        snprintf(stem, sizeof stem, "%s/killed%zu", g_dir, d);
        snprintf(out, sizeof out, "%s.gguf", stem);
        pid_t pid = fork();
        if (pid == 0) {
            execl(QP_BINARY, "qpack", "convert", qp_fixture(MODEL), "-o", out, "--split-max-size", "8M", "-q", "-t",
                  "1", (char *)NULL);
            _exit(127);
        }
        usleep((useconds_t)delays_us[d]);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        /* whatever exists under a final name verifies */
        for (int k = 1; k <= n; k++) {
            char path[4300];
            snprintf(path, sizeof path, "%s-%05d-of-%05d.gguf", stem, k, n);
            if (!qp_test_file_exists(path))
                continue;
            qp_run_result r = qp_run_qpack("verify --single %s", path);
            assert_int_equal(r.exit_code, 0);
            qp_run_free(&r);
        }
        qp_run_qpack_ok("convert %s -o %s %s --resume -q", qp_fixture(MODEL), out, SPLIT);
        assert_same_files(ref, stem, n);
        qp_run_result r = qp_run_shell("ls %s-*.tmp 2>/dev/null | wc -l", stem);
        assert_int_equal(atoi(r.out), 0);
        qp_run_free(&r);
    }
}

static void test_resume_redoes_corrupt_file(void **state)
{
    (void)state;
    char stem[4096], ref[4096], path[4300], args[8192];
    snprintf(ref, sizeof ref, "%s/set", g_dir);
    snprintf(stem, sizeof stem, "%s/corrupt", g_dir);
    int n = count_files(ref);
    qp_run_qpack_ok("convert %s -o %s.gguf %s -q", qp_fixture(MODEL), stem, SPLIT);
    snprintf(path, sizeof path, "%s-%05d-of-%05d.gguf", stem, 2, n);
    size_t sz;
    unsigned char *d = qp_test_read_file(path, &sz);
    d[sz - 10] ^= 1;
    assert_int_equal(qp_test_write_file(path, d, sz), 0);
    free(d);
    snprintf(args, sizeof args, "convert %s -o %s.gguf %s --resume", qp_fixture(MODEL), stem, SPLIT);
    qp_run_result r = qp_run_qpack("%s -q", args);
    assert_int_equal(r.exit_code, 0);
    char want[64];
    snprintf(want, sizeof want, "wrote 1 of %d files", n);
    assert_non_null(strstr(r.out, want));
    qp_run_free(&r);
    assert_same_files(ref, stem, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_set_matches_single_file),
        cmocka_unit_test(test_shards_equal_one_process),
        cmocka_unit_test(test_gnu_parallel),
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_resume_redoes_corrupt_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
