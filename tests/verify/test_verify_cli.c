/* test_verify_cli.c - `qpack verify` through the binary on real conversions
 * of the qwen3-tiny fixture: the figures of --against agree with an
 * independent recomputation from the fixture's source rows and with the
 * figures llama.cpp's own Q8_0 reaches (ggml-vectors/vectors.json);
 * missing, extra and mis-shaped tensors, corrupted data and incomplete
 * split sets are errors. */
/* ctest-labels: fast threads */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/qp_ggml_types.h"
#include "format/gguf.h"
#include "quant/qtype.h"
#include "support/qp_test.h"

static char *g_root;
static char g_q8[4096], g_src[4096];

static const char *path_in(const char *name)
{
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 4096, "%s/%s", g_root, name);
    return b;
}

static int setup(void **state)
{
    (void)state;
    g_root = qp_test_tmpdir("verify-cli");
    if (!g_root)
        return -1;
    snprintf(g_src, sizeof g_src, "%s", qp_fixture("models/qwen3-tiny"));
    snprintf(g_q8, sizeof g_q8, "%s", path_in("tiny-q8.gguf"));
    qp_run_result r = qp_run_qpack("convert %s -o %s --type Q8_0 -q", g_src, g_q8);
    int ok = r.exit_code == 0;
    if (!ok)
        fprintf(stderr, "convert failed: %s\n", r.err);
    qp_run_free(&r);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_root);
    free(g_root);
    return 0;
}

static cJSON *parse_or_fail(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        print_error("not JSON: %.400s\n", text);
    assert_non_null(j);
    return j;
}

static const cJSON *tensor_by_name(const cJSON *root, const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(root, "tensors"))
    {
        const cJSON *n = cJSON_GetObjectItem(t, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return t;
    }
    print_error("tensor %s not in the JSON\n", name);
    fail();
    return NULL;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    if (!cJSON_IsNumber(v)) {
        print_error("field %s is not a number\n", k);
        fail();
    }
    return v->valuedouble;
}

static void assert_rel(double got, double want, double tol, const char *what)
{
    if (!(fabs(got - want) <= tol * fabs(want))) {
        print_error("%s: got %.12g, want %.12g (rel tol %g)\n", what, got, want, tol);
        fail();
    }
}

/* Relative RMSE of one tensor of `gguf` against the fixture's f32 rows,
 * computed here without the verify module. */
static double independent_rel_rmse(const char *gguf, const char *name, const char *src_f32)
{
    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(gguf, &g, &err), QP_OK);
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, name);
    assert_non_null(t);
    size_t n;
    float *src = qp_test_read_file(src_f32, &n);
    assert_non_null(src);
    int64_t row = t->ne[0], rows = t->ne[1];
    assert_int_equal(n, (size_t)(row * rows) * sizeof(float));
    const qp_qtype *q = qp_qtype_get(t->type);
    assert_non_null(q);
    float *deq = malloc((size_t)row * sizeof *deq);
    uint64_t rb = qp_qtype_row_bytes(t->type, row);
    double se = 0, ss = 0;
    for (int64_t r = 0; r < rows; r++) {
        q->dequantize_row((const uint8_t *)t->data + r * rb, deq, row);
        for (int64_t j = 0; j < row; j++) {
            double s = src[r * row + j], e = (double)deq[j] - s;
            se += e * e;
            ss += s * s;
        }
    }
    free(deq);
    free(src);
    qp_gguf_close(g);
    return sqrt(se / ss);
}

static void test_q8_0_against_source(void **state)
{
    (void)state;
    qp_run_result r = qp_run_qpack("verify %s --against %s --imatrix %s --json -t 3", g_q8, g_src,
                                   qp_fixture("ggml-vectors/imatrix-calib.gguf"));
    if (r.exit_code)
        print_error("%s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    cJSON *j = parse_or_fail(r.out);
    assert_string_equal(cJSON_GetObjectItem(j, "schema")->valuestring, "qpack.verify/1");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    const cJSON *sm = cJSON_GetObjectItem(j, "summary");
    assert_int_equal((int)jnum(sm, "compared"), 46);
    assert_int_equal((int)jnum(sm, "missing"), 0);
    assert_int_equal((int)jnum(sm, "extra"), 0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tensors")), 46);
    /* Every matrix is Q8_0 with ~0.5% error; norms are stored exactly. */
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "tensors"))
    {
        assert_string_equal(cJSON_GetObjectItem(t, "status")->valuestring, "ok");
        const char *type = cJSON_GetObjectItem(t, "type")->valuestring;
        if (strcmp(type, "F32") == 0) {
            assert_true(jnum(t, "rel_rmse") == 0);
            assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "snr_db"))); /* +inf */
            assert_true(jnum(t, "cosine") == 1);
        } else {
            assert_string_equal(type, "Q8_0");
            double rel = jnum(t, "rel_rmse");
            assert_true(rel > 0.004 && rel < 0.007);
            assert_true(jnum(t, "cosine") > 0.9999);
            assert_rel(jnum(t, "snr_db"), -20 * log10(rel), 1e-9, "snr vs rel_rmse");
        }
    }
    /* llama.cpp's Q8_0 of the same tensors (vectors.json), plain and
     * importance-weighted with the same matrix: same blocks, same figures. */
    size_t n;
    char *vj = qp_test_read_file(qp_fixture("ggml-vectors/vectors.json"), &n);
    assert_non_null(vj);
    cJSON *v = parse_or_fail(vj);
    const cJSON *vt = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "types"), "pure-Q8_0"), "tensors");
    const char *names[2] = {"blk.0.ffn_down.weight", "blk.1.attn_q.weight"};
    for (int i = 0; i < 2; i++) {
        const cJSON *mine = tensor_by_name(j, names[i]), *ref = cJSON_GetObjectItem(vt, names[i]);
        assert_non_null(ref);
        assert_rel(jnum(mine, "rel_rmse"), jnum(ref, "rel_rmse"), 1e-6, names[i]);
        assert_rel(jnum(mine, "weighted_rel_rmse"), jnum(ref, "imatrix_weighted_rel_rmse"), 1e-6, names[i]);
        assert_rel(jnum(mine, "rmse"), jnum(ref, "rmse"), 1e-6, names[i]);
        /* And the same number recomputed here from the fixture's rows. */
        char src[256];
        snprintf(src, sizeof src, "ggml-vectors/%s.src.f32", names[i]);
        assert_rel(jnum(mine, "rel_rmse"), independent_rel_rmse(g_q8, names[i], qp_fixture(src)), 1e-9, src);
    }
    cJSON_Delete(v);
    free(vj);
    cJSON_Delete(j);
    qp_run_free(&r);
}

static void test_table_and_thread_independence(void **state)
{
    (void)state;
    qp_run_result a = qp_run_qpack("verify %s --against %s --json -t 1", g_q8, g_src);
    qp_run_result b = qp_run_qpack("verify %s --against %s --json -t 4", g_q8, g_src);
    assert_int_equal(a.exit_code, 0);
    assert_int_equal(b.exit_code, 0);
    assert_string_equal(a.out, b.out);
    qp_run_free(&a);
    qp_run_free(&b);
    qp_run_result t = qp_run_qpack("verify %s --against %s -q", g_q8, g_src);
    assert_int_equal(t.exit_code, 0);
    assert_non_null(strstr(t.out, "rel_rmse"));
    assert_non_null(strstr(t.out, "blk.3.ffn_down.weight"));
    assert_non_null(strstr(t.out, "compared 46 of 46 tensors"));
    assert_int_equal(t.err[0], '\0');
    qp_run_free(&t);
}

/* One tensor in Q4_K (the rest Q8_0, so this stays quick under ASan): its
 * figures match the recomputation, and the quantizer is no worse than
 * llama.cpp's Q4_K on the same tensor (vectors.json, pure-Q4_K_S). */
static void test_q4_k_tensor(void **state)
{
    (void)state;
    const char *out = path_in("tiny-q4k.gguf");
    qp_run_result c = qp_run_qpack("convert %s -o %s --type Q8_0 --tensor-type 'blk\\.1\\.attn_q\\.weight=Q4_K' -q",
                                   g_src, out);
    if (c.exit_code)
        print_error("%s\n", c.err);
    assert_int_equal(c.exit_code, 0);
    qp_run_free(&c);
    qp_run_result r = qp_run_qpack("verify %s --against %s --json", out, g_src);
    assert_int_equal(r.exit_code, 0);
    cJSON *j = parse_or_fail(r.out);
    const char *name = "blk.1.attn_q.weight";
    const cJSON *t = tensor_by_name(j, name);
    assert_string_equal(cJSON_GetObjectItem(t, "type")->valuestring, "Q4_K");
    assert_rel(jnum(t, "bits_per_weight"), 4.5, 1e-12, "Q4_K bpw");
    double rel = jnum(t, "rel_rmse");
    assert_rel(rel, independent_rel_rmse(out, name, qp_fixture("ggml-vectors/blk.1.attn_q.weight.src.f32")), 1e-9,
               "Q4_K recomputed");
    size_t n;
    char *vj = qp_test_read_file(qp_fixture("ggml-vectors/vectors.json"), &n);
    assert_non_null(vj);
    cJSON *v = parse_or_fail(vj);
    double ggml = jnum(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(v, "types"),
                                                                                   "pure-Q4_K_S"), "tensors"), name),
                       "rel_rmse");
    if (!(rel <= ggml * 1.01))
        print_error("Q4_K rel RMSE %.6f vs llama.cpp %.6f\n", rel, ggml);
    assert_true(rel <= ggml * 1.01);
    assert_true(rel > 0.5 * ggml);
    assert_true(jnum(t, "cosine") > 0.996);
    assert_string_equal(cJSON_GetObjectItem(tensor_by_name(j, "blk.1.attn_k.weight"), "type")->valuestring, "Q8_0");
    cJSON_Delete(v);
    free(vj);
    cJSON_Delete(j);
    qp_run_free(&r);
}

/* Copy `from` into `to`, leaving out tensor `drop`, shrinking `shrink` to
 * half its rows, and adding an F32 tensor `add`. */
static void write_variant(const char *from, const char *to, const char *drop, const char *shrink, const char *add)
{
    qp_gguf *g = NULL;
    qp_err err;
    assert_int_equal(qp_gguf_open(from, &g, &err), QP_OK);
    qp_gguf_writer *w = qp_gguf_writer_new(to);
    assert_non_null(w);
    assert_int_equal(qp_gguf_set_str(w, "general.architecture", "qwen3"), QP_OK);
    int64_t n = qp_gguf_tensor_count(g);
    int64_t *idx = calloc((size_t)n + 1, sizeof *idx);
    for (int64_t i = 0; i < n; i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        idx[i] = -1;
        if (drop && strcmp(name, drop) == 0)
            continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        if (shrink && strcmp(name, shrink) == 0)
            ne[1] /= 2;
        idx[i] = qp_gguf_add_tensor(w, name, t->n_dims, ne, t->type, &err);
        assert_true(idx[i] >= 0);
    }
    int64_t extra = -1;
    if (add) {
        int64_t ne[1] = {8};
        extra = qp_gguf_add_tensor(w, add, 1, ne, QP_GGML_F32, &err);
        assert_true(extra >= 0);
    }
    assert_int_equal(qp_gguf_writer_begin(w, &err), QP_OK);
    for (int64_t i = 0; i < n; i++) {
        if (idx[i] < 0)
            continue;
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        uint64_t nb = qp_gguf_writer_tensor_nbytes(w, idx[i]);
        assert_int_equal(qp_gguf_write_tensor(w, idx[i], 0, t->data, nb, &err), QP_OK);
    }
    if (extra >= 0) {
        float z[8] = {0};
        assert_int_equal(qp_gguf_write_tensor(w, extra, 0, z, sizeof z, &err), QP_OK);
    }
    assert_int_equal(qp_gguf_writer_finish(w, &err), QP_OK);
    qp_gguf_writer_free(w);
    free(idx);
    qp_gguf_close(g);
}

static void test_missing_extra_shape(void **state)
{
    (void)state;
    const char *f = path_in("variant.gguf");
    write_variant(g_q8, f, "blk.2.ffn_up.weight", "blk.0.attn_q.weight", "blk.0.bogus.weight");
    qp_run_result r = qp_run_qpack("verify %s --against %s --json", f, g_src);
    assert_int_equal(r.exit_code, 2);
    assert_int_equal(qp_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, "tensors missing 1, extra 1, bad 1"));
    cJSON *j = parse_or_fail(r.out);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    const cJSON *sm = cJSON_GetObjectItem(j, "summary");
    assert_int_equal((int)jnum(sm, "missing"), 1);
    assert_int_equal((int)jnum(sm, "extra"), 1);
    assert_int_equal((int)jnum(sm, "bad"), 1);
    assert_int_equal((int)jnum(sm, "compared"), 44);
    assert_string_equal(cJSON_GetObjectItem(tensor_by_name(j, "blk.2.ffn_up.weight"), "status")->valuestring,
                        "missing");
    assert_string_equal(cJSON_GetObjectItem(tensor_by_name(j, "blk.0.bogus.weight"), "status")->valuestring,
                        "extra");
    const cJSON *sh = tensor_by_name(j, "blk.0.attn_q.weight");
    assert_string_equal(cJSON_GetObjectItem(sh, "status")->valuestring, "shape");
    assert_non_null(strstr(cJSON_GetObjectItem(sh, "note")->valuestring, "[256, 128] in the file, [256, 256]"));
    cJSON_Delete(j);
    qp_run_free(&r);
    /* The terminal table names them too. */
    r = qp_run_qpack("verify %s --against %s -q", f, g_src);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.out, "missing: in the source checkpoint, not in the file"));
    assert_non_null(strstr(r.out, "extra: not in the source checkpoint"));
    qp_run_free(&r);
}

static void test_corrupt_data(void **state)
{
    (void)state;
    size_t n;
    uint8_t *b = qp_test_read_file(g_q8, &n);
    assert_non_null(b);
    b[n - 100] ^= 0x40; /* inside the last tensor's data */
    const char *f = path_in("corrupt.gguf");
    assert_int_equal(qp_test_write_file(f, b, n), 0);
    free(b);
    qp_run_result r = qp_run_qpack("verify %s", f);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "output_norm.weight"));
    qp_run_free(&r);
    r = qp_run_qpack("verify %s --against %s --json", f, g_src);
    assert_int_equal(r.exit_code, 2);
    cJSON *j = parse_or_fail(r.out);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "error")));
    cJSON_Delete(j);
    qp_run_free(&r);
}

static void test_structure_only(void **state)
{
    (void)state;
    qp_run_result r = qp_run_qpack("verify %s", g_q8);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "OK (structure valid, 46 tensor checksums match)"));
    qp_run_free(&r);
    r = qp_run_qpack("verify %s --json", g_q8);
    assert_int_equal(r.exit_code, 0);
    cJSON *j = parse_or_fail(r.out);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "against")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tensors")), 46);
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "checksums"), "files_verified"), 1);
    cJSON_Delete(j);
    qp_run_free(&r);
    /* A llama.cpp file has no checksums: structure only is an error, a
     * comparison is not. */
    r = qp_run_qpack("verify %s", qp_fixture("llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf"));
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "no qpack.tensor_xxh3 checksums"));
    qp_run_free(&r);
    r = qp_run_qpack("verify %s --against %s --json", qp_fixture("llama-cpp-quantized/qwen3-tiny-Q4_K_M.gguf"),
                     g_src);
    assert_int_equal(r.exit_code, 0);
    j = parse_or_fail(r.out);
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "checksums"), "files_without"), 1);
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "summary"), "compared"), 46);
    cJSON_Delete(j);
    qp_run_free(&r);
}

static void test_split_set(void **state)
{
    (void)state;
    const char *out = path_in("split.gguf");
    qp_run_result c = qp_run_qpack("convert %s -o %s --type Q8_0 --split-max-tensors 20 -q", g_src, out);
    assert_int_equal(c.exit_code, 0);
    qp_run_free(&c);
    const char *mid = path_in("split-00002-of-00003.gguf");
    qp_run_result r = qp_run_qpack("verify %s", mid);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "split set of 3 files complete"));
    qp_run_free(&r);
    r = qp_run_qpack("verify %s --against %s --json", mid, g_src);
    assert_int_equal(r.exit_code, 0);
    cJSON *j = parse_or_fail(r.out);
    const cJSON *set = cJSON_GetObjectItem(j, "set");
    assert_string_equal(cJSON_GetObjectItem(set, "kind")->valuestring, "split");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(set, "files")), 3);
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "summary"), "compared"), 46);
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "checksums"), "files_verified"), 3);
    cJSON_Delete(j);
    qp_run_free(&r);
    /* One shard gone: the set is incomplete, whichever shard is named. */
    assert_int_equal(unlink(path_in("split-00003-of-00003.gguf")), 0);
    r = qp_run_qpack("verify %s", path_in("split-00001-of-00003.gguf"));
    assert_int_equal(r.exit_code, 2);
    assert_int_equal(qp_count_lines(r.err), 1);
    assert_non_null(strstr(r.err, "split-00003-of-00003.gguf: this shard of the split set is missing"));
    qp_run_free(&r);
    /* ... while each shard that is there is sound on its own. */
    r = qp_run_qpack("verify --single %s", path_in("split-00001-of-00003.gguf"));
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "OK (structure valid, 20 tensor checksums match)"));
    qp_run_free(&r);
}

/* A Qwen3-Omni conversion is three files; any member opens the set, and
 * --against the checkpoint compares each member with its part of it. */
static void test_omni_set(void **state)
{
    (void)state;
    const char *src = qp_fixture("models/qwen3-omni-tiny-random");
    const char *out = path_in("omni.gguf");
    qp_run_result c = qp_run_qpack("convert %s -o %s --type Q8_0 -q", src, out);
    if (c.exit_code)
        print_error("%s\n", c.err);
    assert_int_equal(c.exit_code, 0);
    qp_run_free(&c);
    qp_run_result r = qp_run_qpack("verify %s", path_in("talker-omni.gguf"));
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "Omni set of 3 files (thinker, mmproj, talker) complete"));
    qp_run_free(&r);
    r = qp_run_qpack("verify %s --against %s --json", path_in("mmproj-omni.gguf"), src);
    if (r.exit_code)
        print_error("%s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    cJSON *j = parse_or_fail(r.out);
    const cJSON *set = cJSON_GetObjectItem(j, "set");
    assert_string_equal(cJSON_GetObjectItem(set, "kind")->valuestring, "omni");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(set, "components")), 3);
    const cJSON *sm = cJSON_GetObjectItem(j, "summary");
    assert_int_equal((int)jnum(sm, "missing") + (int)jnum(sm, "extra") + (int)jnum(sm, "bad"), 0);
    assert_int_equal((int)jnum(sm, "compared"), cJSON_GetArraySize(cJSON_GetObjectItem(j, "tensors")));
    int per_role[3] = {0, 0, 0};
    const char *roles[3] = {"thinker", "mmproj", "talker"};
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(j, "tensors"))
    {
        const char *comp = cJSON_GetObjectItem(t, "component")->valuestring;
        for (int k = 0; k < 3; k++)
            per_role[k] += strcmp(comp, roles[k]) == 0;
        /* the thinker's matrices are Q8_0 of random weights: ~0.5% */
        if (strcmp(comp, "thinker") == 0 && strcmp(cJSON_GetObjectItem(t, "type")->valuestring, "Q8_0") == 0)
            assert_true(jnum(t, "rel_rmse") > 0.003 && jnum(t, "rel_rmse") < 0.008);
    }
    assert_true(per_role[0] > 0 && per_role[1] > 0 && per_role[2] > 0);
    cJSON_Delete(j);
    qp_run_free(&r);
    /* A member gone: the set is incomplete. */
    assert_int_equal(unlink(path_in("mmproj-omni.gguf")), 0);
    r = qp_run_qpack("verify %s", out);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "mmproj-omni.gguf: member 'mmproj' of the Omni set is missing"));
    qp_run_free(&r);
}

static void test_usage_errors(void **state)
{
    (void)state;
    qp_run_result r = qp_run_qpack("verify %s --imatrix x", g_q8);
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    /* A source that does not exist is bad input (exit 2), named. */
    r = qp_run_qpack("verify %s --against %s/nonexistent", g_q8, g_root);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, "nonexistent"));
    qp_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8_0_against_source),
        cmocka_unit_test(test_table_and_thread_independence),
        cmocka_unit_test(test_q4_k_tensor),
        cmocka_unit_test(test_missing_extra_shape),
        cmocka_unit_test(test_corrupt_data),
        cmocka_unit_test(test_structure_only),
        cmocka_unit_test(test_split_set),
        cmocka_unit_test(test_omni_set),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
