/* test_fuzz_replay.c - every fuzz target on its seed corpus and on every
 * saved input under tests/fuzz/regressions/<target>/, without libFuzzer:
 * the crashes the fuzzers found stay fixed in the normal (and sanitizer)
 * build, and the seeds marked valid- are still accepted. */
/* ctest-labels: fast */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/fuzz_targets.h"
#include "support/qp_test.h"

typedef struct {
    int seeds, valid, rejected_valid;
    char first_bad[256];
} seed_stats;

static void run_seed(void *ctx, const char *target, const char *name, const void *data, size_t size)
{
    seed_stats *s = ctx;
    const qp_fuzz_target *t = qp_fuzz_find(target);
    if (!t) {
        snprintf(s->first_bad, sizeof s->first_bad, "unknown target %s", target);
        s->rejected_valid++;
        return;
    }
    /* An exactly sized heap copy, so ASan sees any over-read. */
    void *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    if (size)
        memcpy(copy, data, size);
    int ok = t->run(copy, size);
    free(copy);
    s->seeds++;
    if (strncmp(name, "valid-", 6) == 0) {
        s->valid++;
        if (!ok) {
            if (!s->rejected_valid)
                snprintf(s->first_bad, sizeof s->first_bad, "%s/%s", target, name);
            s->rejected_valid++;
        }
    }
}

static void test_seeds(void **state)
{
    (void)state;
    seed_stats s = {0};
    assert_int_equal(qp_fuzz_seeds(run_seed, &s), 0);
    if (s.rejected_valid)
        print_error("%d valid seeds rejected, first: %s\n", s.rejected_valid, s.first_bad);
    assert_int_equal(s.rejected_valid, 0);
    assert_true(s.valid >= 20);
    assert_true(s.seeds >= 60);
}

/* Replays every file in tests/fuzz/regressions/<target>/; returns how many. */
static int replay_dir(const qp_fuzz_target *t)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regressions/%s", QP_SOURCE_DIR, t->name);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t size;
        void *data = qp_test_read_file(path, &size);
        assert_non_null(data);
        /* qp_test_read_file over-allocates for its NUL: copy exactly. */
        void *copy = malloc(size ? size : 1);
        assert_non_null(copy);
        if (size)
            memcpy(copy, data, size);
        free(data);
        (void)t->run(copy, size);
        free(copy);
        n++;
    }
    closedir(d);
    return n;
}

static void test_regressions(void **state)
{
    (void)state;
    int total = 0;
    for (size_t i = 0; i < qp_fuzz_n_targets; i++) {
        int n = replay_dir(&qp_fuzz_targets[i]);
        printf("fuzz replay: %-11s %d regression inputs\n", qp_fuzz_targets[i].name, n);
        total += n;
    }
    (void)total;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_regressions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
