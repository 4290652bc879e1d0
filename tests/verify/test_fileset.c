/* test_fileset.c - split and Omni sets as a whole: complete sets open from
 * any member; a missing shard or member, inconsistent split keys or Omni
 * manifests, a tensor in two shards, a wrong tensor total or a shard not
 * named like one are errors naming the file. */
/* ctest-labels: fast */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "support/qp_test.h"
#include "verify/fileset.h"

static char *g_root;

static int setup(void **state)
{
    (void)state;
    g_root = qp_test_tmpdir("verify-fileset");
    return g_root ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_root);
    free(g_root);
    return 0;
}

/* One shard: split keys as llama.cpp's gguf-split writes them (u16, u16,
 * i32), then F32 tensors of 4 elements with the given names. no < 0: no
 * split keys at all. */
static void write_shard(const char *path, int no, int count, int total, const char *const *names, int n)
{
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    assert_non_null(w);
    qp_err err;
    assert_int_equal(qp_gguf_set_str(w, "general.architecture", "qwen3"), QP_OK);
    if (no >= 0) {
        assert_int_equal(qp_gguf_set_u16(w, "split.no", (uint16_t)no), QP_OK);
        assert_int_equal(qp_gguf_set_u16(w, "split.count", (uint16_t)count), QP_OK);
        assert_int_equal(qp_gguf_set_i32(w, "split.tensors.count", total), QP_OK);
    }
    int64_t ne[1] = {4};
    for (int i = 0; i < n; i++)
        assert_true(qp_gguf_add_tensor(w, names[i], 1, ne, QP_GGML_F32, &err) >= 0);
    assert_int_equal(qp_gguf_writer_begin(w, &err), QP_OK);
    for (int i = 0; i < n; i++) {
        float v[4] = {(float)i, 1, 2, 3};
        assert_int_equal(qp_gguf_write_tensor(w, i, 0, v, sizeof v, &err), QP_OK);
    }
    assert_int_equal(qp_gguf_writer_finish(w, &err), QP_OK);
    qp_gguf_writer_free(w);
}

static const char *shard(const char *stem, int k, int n)
{
    static char buf[4][4200];
    static int slot;
    char *b = buf[slot++ & 3];
    snprintf(b, sizeof buf[0], "%s/%s-%05d-of-%05d.gguf", g_root, stem, k, n);
    return b;
}

/* a, b | c | d */
static void write_good_set(const char *stem)
{
    const char *s1[] = {"a", "b"}, *s2[] = {"c"}, *s3[] = {"d"};
    write_shard(shard(stem, 1, 3), 0, 3, 4, s1, 2);
    write_shard(shard(stem, 2, 3), 1, 3, 4, s2, 1);
    write_shard(shard(stem, 3, 3), 2, 3, 4, s3, 1);
}

static void expect_error(const char *path, const char *where, const char *what)
{
    qp_fileset *s = NULL;
    qp_err err;
    qp_err_clear(&err);
    qp_status st = qp_fileset_open(path, &s, &err);
    if (st != QP_ERR_BAD_INPUT || !strstr(err.path, where) || !strstr(err.msg, what))
        print_error("status %d, path '%s', msg '%s'\n", st, err.path, err.msg);
    assert_int_equal(st, QP_ERR_BAD_INPUT);
    assert_null(s);
    assert_non_null(strstr(err.path, where));
    assert_non_null(strstr(err.msg, what));
}

static void test_complete_set(void **state)
{
    (void)state;
    write_good_set("good");
    for (int k = 1; k <= 3; k++) {
        qp_fileset *s = NULL;
        qp_err err;
        assert_int_equal(qp_fileset_open(shard("good", k, 3), &s, &err), QP_OK);
        assert_int_equal(qp_fileset_kind_of(s), QP_FILESET_SPLIT);
        assert_int_equal(qp_fileset_file_count(s), 3);
        assert_int_equal(qp_fileset_tensor_count(s), 4);
        assert_string_equal(qp_fileset_path(s, 1), shard("good", 2, 3));
        int f = -1;
        const qp_gguf_tensor *t = qp_fileset_find(s, "c", &f);
        assert_non_null(t);
        assert_int_equal(f, 1);
        t = qp_fileset_tensor_at(s, 3, &f);
        assert_int_equal(f, 2);
        assert_memory_equal(t->name.ptr, "d", 1);
        assert_null(qp_fileset_find(s, "e", NULL));
        int checked = 0;
        assert_int_equal(qp_fileset_verify_checksums(s, &checked, &err), QP_OK);
        assert_int_equal(checked, 3);
        qp_fileset_close(s);
    }
}

static void test_single_file(void **state)
{
    (void)state;
    char p[4200];
    snprintf(p, sizeof p, "%s/single.gguf", g_root);
    const char *names[] = {"x", "y"};
    write_shard(p, -1, 0, 0, names, 2);
    qp_fileset *s = NULL;
    qp_err err;
    assert_int_equal(qp_fileset_open(p, &s, &err), QP_OK);
    assert_int_equal(qp_fileset_kind_of(s), QP_FILESET_SINGLE);
    assert_int_equal(qp_fileset_tensor_count(s), 2);
    qp_fileset_close(s);
    qp_fileset_close(NULL);
}

static void test_missing_shard(void **state)
{
    (void)state;
    write_good_set("gap");
    assert_int_equal(unlink(shard("gap", 2, 3)), 0);
    expect_error(shard("gap", 3, 3), "gap-00002-of-00003.gguf", "this shard of the split set is missing");
}

static void test_inconsistent_keys(void **state)
{
    (void)state;
    const char *s1[] = {"a", "b"}, *s2[] = {"c"}, *s3[] = {"d"}, *dup[] = {"a"};
    /* split.no disagrees with the name */
    write_shard(shard("no", 1, 3), 0, 3, 4, s1, 2);
    write_shard(shard("no", 2, 3), 2, 3, 4, s2, 1);
    write_shard(shard("no", 3, 3), 2, 3, 4, s3, 1);
    expect_error(shard("no", 1, 3), "no-00002-of-00003.gguf", "split.no 2 / split.count 3 do not match");
    /* a tensor in two shards */
    write_shard(shard("dup", 1, 3), 0, 3, 4, s1, 2);
    write_shard(shard("dup", 2, 3), 1, 3, 4, s2, 1);
    write_shard(shard("dup", 3, 3), 2, 3, 4, dup, 1);
    expect_error(shard("dup", 1, 3), "dup-00003-of-00003.gguf", "tensor also present in");
    /* tensors do not add up */
    write_shard(shard("sum", 1, 3), 0, 3, 5, s1, 2);
    write_shard(shard("sum", 2, 3), 1, 3, 5, s2, 1);
    write_shard(shard("sum", 3, 3), 2, 3, 5, s3, 1);
    expect_error(shard("sum", 2, 3), "sum-00002-of-00003.gguf", "the set holds 4 tensors, split.tensors.count says 5");
    /* the name promises 3 shards, the keys 2 */
    write_shard(shard("cnt", 1, 3), 0, 2, 4, s1, 2);
    expect_error(shard("cnt", 1, 3), "cnt-00001-of-00003.gguf", "split.count 2 do not match the file name");
    /* split keys on a file not named like a shard */
    char p[4200];
    snprintf(p, sizeof p, "%s/plain.gguf", g_root);
    write_shard(p, 0, 2, 4, s1, 2);
    expect_error(p, "plain.gguf", "is not named <prefix>-NNNNN-of-NNNNN.gguf");
    /* a shard without split keys */
    write_shard(shard("keys", 1, 2), 0, 2, 3, s1, 2);
    write_shard(shard("keys", 2, 2), -1, 0, 0, s2, 1);
    expect_error(shard("keys", 1, 2), "keys-00002-of-00002.gguf", "lacks split.* keys");
}

/* A two-member Omni-style set: a.gguf ("thinker", 2 tensors) and b.gguf
 * ("talker", 1 tensor) made from 3 source tensors. `role`, `here`, `files`
 * override one member's manifest to break it. */
typedef struct {
    const char *role;
    uint64_t here, total;
    const char *files[2];
    int n_sources; /* entries in qpack.omni.tensor_sources */
} omni_member;

static void write_member(const char *dir, const char *name, const omni_member *m, const char *const *tensors, int n)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    assert_non_null(w);
    qp_err err;
    const char *roles[2] = {"thinker", "talker"};
    const char *srcs[4] = {"copy x", "copy y", "copy z", "copy w"};
    assert_int_equal(qp_gguf_set_str(w, "qpack.omni.component", m->role), QP_OK);
    assert_int_equal(qp_gguf_set_arr_str(w, "qpack.omni.files", m->files, NULL, 2), QP_OK);
    assert_int_equal(qp_gguf_set_arr_str(w, "qpack.omni.components", roles, NULL, 2), QP_OK);
    assert_int_equal(qp_gguf_set_u64(w, "qpack.omni.source_tensor_count", m->total), QP_OK);
    assert_int_equal(qp_gguf_set_u64(w, "qpack.omni.source_tensors_here", m->here), QP_OK);
    assert_int_equal(qp_gguf_set_arr_str(w, "qpack.omni.tensor_sources", srcs, NULL, (uint64_t)m->n_sources), QP_OK);
    int64_t ne[1] = {4};
    for (int i = 0; i < n; i++)
        assert_true(qp_gguf_add_tensor(w, tensors[i], 1, ne, QP_GGML_F32, &err) >= 0);
    assert_int_equal(qp_gguf_writer_begin(w, &err), QP_OK);
    for (int i = 0; i < n; i++) {
        float v[4] = {1, 2, 3, 4};
        assert_int_equal(qp_gguf_write_tensor(w, i, 0, v, sizeof v, &err), QP_OK);
    }
    assert_int_equal(qp_gguf_writer_finish(w, &err), QP_OK);
    qp_gguf_writer_free(w);
}

static char *omni_dir(const char *tag, const omni_member *a, const omni_member *b)
{
    char *dir = malloc(4200);
    snprintf(dir, 4200, "%s/%s", g_root, tag);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    const char *ta[] = {"token_embd.weight", "blk.0.attn_q.weight"}, *tb[] = {"blk.0.attn_q.weight"};
    write_member(dir, "a.gguf", a, ta, 2);
    if (b)
        write_member(dir, "b.gguf", b, tb, 1);
    return dir;
}

static void test_omni_sets(void **state)
{
    (void)state;
    const omni_member A = {"thinker", 2, 3, {"a.gguf", "b.gguf"}, 2}, B = {"talker", 1, 3, {"a.gguf", "b.gguf"}, 1};
    char *d = omni_dir("omni-good", &A, &B);
    char p[4300];
    snprintf(p, sizeof p, "%s/b.gguf", d);
    qp_fileset *s = NULL;
    qp_err err;
    assert_int_equal(qp_fileset_open(p, &s, &err), QP_OK);
    assert_int_equal(qp_fileset_kind_of(s), QP_FILESET_OMNI);
    assert_int_equal(qp_fileset_file_count(s), 2);
    assert_string_equal(qp_fileset_role(s, 0), "thinker");
    assert_string_equal(qp_fileset_role(s, 1), "talker");
    assert_int_equal(qp_fileset_tensor_count(s), 3);
    assert_int_equal(qp_fileset_file_first(s, 1), 2);
    assert_int_equal(qp_fileset_file_tensors(s, 1), 1);
    /* the same name in two members is fine: separate models */
    int f = -1;
    assert_non_null(qp_fileset_find(s, "blk.0.attn_q.weight", &f));
    assert_int_equal(f, 0);
    qp_fileset_close(s);
    free(d);

    d = omni_dir("omni-gap", &A, NULL);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    expect_error(p, "b.gguf", "member 'talker' of the Omni set is missing");
    free(d);

    omni_member bad = B;
    bad.role = "thinker";
    d = omni_dir("omni-role", &A, &bad);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    expect_error(p, "b.gguf", "qpack.omni.component is not 'talker'");
    free(d);

    bad = B;
    bad.here = 0;
    d = omni_dir("omni-lost", &A, &bad);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    expect_error(p, "a.gguf", "the members hold 2 source tensors but the source had 3");
    free(d);

    bad = B;
    bad.n_sources = 3;
    d = omni_dir("omni-srcs", &A, &bad);
    snprintf(p, sizeof p, "%s/b.gguf", d);
    expect_error(p, "b.gguf", "3 qpack.omni.tensor_sources entries for 1 tensors");
    free(d);

    bad = B;
    bad.files[0] = "other.gguf";
    d = omni_dir("omni-manifest", &A, &bad);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    expect_error(p, "b.gguf", "manifest differs");
    free(d);

    omni_member esc = A;
    esc.files[1] = "../b.gguf";
    d = omni_dir("omni-escape", &esc, NULL);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    expect_error(p, "a.gguf", "entry 1 is not a file name");
    free(d);

    esc = A;
    esc.files[0] = "renamed.gguf";
    d = omni_dir("omni-renamed", &esc, NULL);
    snprintf(p, sizeof p, "%s/a.gguf", d);
    expect_error(p, "a.gguf", "not in its own qpack.omni.files manifest");
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_set),
        cmocka_unit_test(test_single_file),
        cmocka_unit_test(test_missing_shard),
        cmocka_unit_test(test_inconsistent_keys),
        cmocka_unit_test(test_omni_sets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
