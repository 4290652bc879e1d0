/* test_stream_spill.c - the activation store of the layer-streaming engine
 * (runtime-lite/spill.c): records round-trip bit for bit in memory and
 * through the zstd temp file, in any order; the file leaves no name behind;
 * reset forgets; misuse and an unusable directory are errors. */
/* ctest-labels: fast */
#include "support/qp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime-lite/spill.h"

#define N_CHUNKS 5
#define FLOATS 4096

static void fill(float *v, int chunk)
{
    /* hidden-state-like values: smooth plus a pseudo-random tail */
    uint32_t x = 2463534242u + (uint32_t)chunk * 7919u;
    for (int i = 0; i < FLOATS; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[i] = (float)(i % 97) * 0.25f - 12.0f + (float)(x % 1000) * 1e-4f;
    }
}

static void round_trip(int to_disk)
{
    char *tmp = qp_test_tmpdir(to_disk ? "spill-disk" : "spill-ram");
    assert_non_null(tmp);
    qp_rt_spill *s = NULL;
    qp_err err;
    assert_int_equal(qp_rt_spill_new(N_CHUNKS, FLOATS * sizeof(float), to_disk, tmp, 3, &s, &err), QP_OK);
    assert_int_equal(qp_rt_spill_on_disk(s), to_disk);
    /* the spill file is unlinked at once: nothing to clean up, ever */
    assert_int_equal(qp_test_dir_entries(tmp), 0);
    static float in[N_CHUNKS][FLOATS], out[FLOATS];
    const int order[N_CHUNKS] = {3, 0, 4, 1, 2};
    for (int i = 0; i < N_CHUNKS; i++) {
        fill(in[order[i]], order[i]);
        assert_int_equal(qp_rt_spill_put(s, order[i], in[order[i]], &err), QP_OK);
    }
    for (int round = 0; round < 2; round++) /* reads do not consume */
        for (int k = 0; k < N_CHUNKS; k++) {
            memset(out, 0, sizeof out);
            assert_int_equal(qp_rt_spill_get(s, k, out, &err), QP_OK);
            assert_memory_equal(out, in[k], sizeof out);
        }
    if (to_disk) {
        const uint64_t disk = qp_rt_spill_disk_bytes(s);
        assert_true(disk > 0);
        assert_true(disk < (uint64_t)N_CHUNKS * FLOATS * sizeof(float)); /* compressible data shrinks */
        assert_true(qp_rt_spill_ram_bytes(s) < (uint64_t)N_CHUNKS * FLOATS * sizeof(float));
    } else {
        assert_int_equal(qp_rt_spill_disk_bytes(s), 0);
        assert_int_equal(qp_rt_spill_ram_bytes(s), (uint64_t)N_CHUNKS * FLOATS * sizeof(float));
    }
    /* a record is written once per reset */
    assert_int_equal(qp_rt_spill_put(s, 2, in[2], &err), QP_ERR_USAGE);
    assert_int_equal(qp_rt_spill_reset(s, &err), QP_OK);
    assert_int_equal(qp_rt_spill_disk_bytes(s), 0);
    assert_int_equal(qp_rt_spill_get(s, 2, out, &err), QP_ERR_USAGE);
    assert_int_equal(qp_rt_spill_put(s, 2, in[1], &err), QP_OK);
    assert_int_equal(qp_rt_spill_get(s, 2, out, &err), QP_OK);
    assert_memory_equal(out, in[1], sizeof out);
    assert_int_equal(qp_rt_spill_get(s, N_CHUNKS, out, &err), QP_ERR_USAGE);
    assert_int_equal(qp_rt_spill_get(s, -1, out, &err), QP_ERR_USAGE);
    qp_rt_spill_free(s);
    assert_int_equal(qp_test_dir_entries(tmp), 0);
    qp_test_rmtree(tmp);
    free(tmp);
}

static void test_memory(void **state)
{
    (void)state;
    round_trip(0);
}

static void test_disk(void **state)
{
    (void)state;
    round_trip(1);
}

static void test_errors(void **state)
{
    (void)state;
    qp_rt_spill *s = NULL;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_rt_spill_new(2, 64, 1, "/nonexistent-qpack-dir/x", 1, &s, &err), QP_ERR_IO);
    assert_null(s);
    char buf[512];
    qp_err_format(&err, buf, sizeof buf);
    assert_non_null(strstr(buf, "/nonexistent-qpack-dir/x")); /* the message names the directory */
    assert_int_equal(qp_rt_spill_new(0, 64, 0, NULL, 1, &s, &err), QP_ERR_USAGE);
    assert_int_equal(qp_rt_spill_new(2, 0, 0, NULL, 1, &s, &err), QP_ERR_USAGE);
    qp_rt_spill_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_disk),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
