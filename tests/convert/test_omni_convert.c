/* test_omni_convert.c - `qpack convert` of the Qwen3-Omni fixture writes the
 * three files and nothing is dropped: every one of the 391 source tensors
 * lands in exactly one file (by the manifest's name map, and for a bf16 run
 * by comparing the data, accounting for stacking, widening, narrowing to
 * F16, the temporal split of the patch embedding and reshapes); the thinker
 * file matches what llama.cpp writes; the manifest names the set; presets
 * quantize the talker's MoE linears with llama.cpp's fallbacks; an
 * unrecognised tensor is an error naming it. */
/* ctest-labels: fast */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/qp_ggml_types.h"
#include "common/qp_half.h"
#include "convert/omni.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "quant/qtype.h"
#include "support/conventions.h"
#include "support/qp_test.h"
#include "support/st_craft.h"

#define OMNI "models/qwen3-omni-tiny-random"
#define N_SOURCE 391

static char *g_dir;

static int setup(void **state)
{
    (void)state;
    g_dir = qp_test_tmpdir("omni-convert");
    return g_dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_dir);
    free(g_dir);
    return 0;
}

static const char *const ROLES[3] = {"thinker", "mmproj", "talker"};

static void out_paths(const char *stem, char paths[3][4096])
{
    snprintf(paths[0], 4096, "%s/%s.gguf", g_dir, stem);
    snprintf(paths[1], 4096, "%s/mmproj-%s.gguf", g_dir, stem);
    snprintf(paths[2], 4096, "%s/talker-%s.gguf", g_dir, stem);
}

static void convert(const char *stem, const char *extra)
{
    char paths[3][4096];
    out_paths(stem, paths);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q --force %s", qp_fixture(OMNI), paths[0], extra);
    if (r.exit_code != 0)
        print_error("qpack convert failed (%d): %s\n", r.exit_code, r.err);
    assert_int_equal(r.exit_code, 0);
    for (int f = 0; f < 3; f++)
        assert_non_null(strstr(r.out, paths[f]));
    qp_run_free(&r);
}

static void str_of(qp_gguf_str s, char *buf, size_t size)
{
    size_t n = s.len < size - 1 ? (size_t)s.len : size - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = '\0';
}

/* ------------------------------------------------------------ name map */

/* Expand "PREFIX{a..b}SUFFIX" (or a comma list) into names. */
static int expand(const char *spec, char names[][160], int max)
{
    const char *lb = strchr(spec, '{');
    if (!lb) {
        int n = 0;
        const char *s = spec;
        while (*s && n < max) {
            size_t len = strcspn(s, ",");
            snprintf(names[n++], 160, "%.*s", (int)len, s);
            s += len + (s[len] == ',');
        }
        return n;
    }
    long a, b;
    const char *rb = strchr(lb, '}');
    assert_non_null(rb);
    assert_int_equal(sscanf(lb, "{%ld..%ld}", &a, &b), 2);
    int n = 0;
    for (long i = a; i <= b && n < max; i++)
        snprintf(names[n++], 160, "%.*s%ld%s", (int)(lb - spec), spec, i, rb + 1);
    return n;
}

typedef struct {
    char op[24];
    char names[64][160];
    int n;
} source_spec;

static void parse_spec(const char *text, source_spec *s)
{
    const char *sp = strchr(text, ' ');
    assert_non_null(sp);
    snprintf(s->op, sizeof s->op, "%.*s", (int)(sp - text), text);
    s->n = 0;
    if (strcmp(s->op, "generated") == 0)
        return;
    s->n = expand(sp + 1, s->names, 64);
    assert_true(s->n > 0);
}

/* Every source tensor is named by exactly one file's map; within that file
 * only the two temporal halves of the patch embedding share a source. */
static void check_name_map(qp_gguf *g[3])
{
    qp_st_model *st = NULL;
    qp_err err;
    assert_int_equal(qp_st_open_dir(qp_fixture(OMNI), &st, &err), QP_OK);
    assert_int_equal(qp_st_count(st), N_SOURCE);
    int *file_of = calloc(N_SOURCE, sizeof *file_of);
    int *refs = calloc(N_SOURCE, sizeof *refs);
    for (int i = 0; i < N_SOURCE; i++)
        file_of[i] = -1;
    source_spec *sp = malloc(sizeof *sp);
    for (int f = 0; f < 3; f++) {
        int64_t k = qp_gguf_find_key(g[f], "qpack.omni.tensor_sources");
        assert_true(k >= 0);
        assert_int_equal(qp_gguf_arr_len(g[f], k), (uint64_t)qp_gguf_tensor_count(g[f]));
        uint64_t here = 0, sources_here = 0;
        assert_true(qp_gguf_get_u64(g[f], "qpack.omni.source_tensors_here", &here));
        for (uint64_t j = 0; j < qp_gguf_arr_len(g[f], k); j++) {
            char text[16384];
            str_of(qp_gguf_arr_str(g[f], k, j), text, sizeof text);
            parse_spec(text, sp);
            for (int n = 0; n < sp->n; n++) {
                size_t idx;
                for (idx = 0; idx < N_SOURCE; idx++)
                    if (strcmp(qp_st_at(st, idx)->name, sp->names[n]) == 0)
                        break;
                if (idx == N_SOURCE)
                    print_error("%s names unknown source %s\n", ROLES[f], sp->names[n]);
                assert_true(idx < N_SOURCE);
                if (file_of[idx] >= 0 && file_of[idx] != f)
                    print_error("%s lands in %s and %s\n", sp->names[n], ROLES[file_of[idx]], ROLES[f]);
                assert_true(file_of[idx] < 0 || file_of[idx] == f);
                if (refs[idx] > 0)
                    assert_true(strncmp(sp->op, "split_t", 7) == 0);
                if (refs[idx]++ == 0)
                    sources_here++;
                file_of[idx] = f;
            }
        }
        assert_int_equal(sources_here, here);
    }
    for (int i = 0; i < N_SOURCE; i++) {
        if (file_of[i] < 0)
            print_error("source %s is in no file\n", qp_st_at(st, i)->name);
        assert_true(file_of[i] >= 0);
        /* and in the file of its component */
        int c = qp_omni_component_of(qp_st_at(st, i)->name);
        int want = c == QP_OMNI_THINKER_TEXT ? 0 : c == QP_OMNI_AUDIO || c == QP_OMNI_VISION ? 1 : 2;
        assert_int_equal(file_of[i], want);
    }
    free(sp);
    free(file_of);
    free(refs);
    qp_st_close(st);
}

/* ------------------------------------------------------------ data */

/* Source elements as f32 (exact for bf16). */
static float *read_source(qp_st_model *st, const char *name, uint64_t *n)
{
    const qp_st_tensor *t = qp_st_find(st, name);
    assert_non_null(t);
    float *v = malloc(t->n_elems * sizeof *v);
    qp_err err;
    assert_int_equal(qp_st_read_f32(st, t, 0, t->n_elems, v, &err), QP_OK);
    *n = t->n_elems;
    return v;
}

/* Output element i equals what the converter must make of source value x:
 * the bf16 bytes, their exact f32 widening, or their f16 rounding. */
static int element_ok(const qp_gguf_tensor *t, uint64_t i, float x)
{
    const unsigned char *d = t->data;
    if (t->type == QP_GGML_F32) {
        float y;
        memcpy(&y, d + 4 * i, 4);
        return y == x;
    }
    uint16_t h;
    memcpy(&h, d + 2 * i, 2);
    if (t->type == QP_GGML_BF16)
        return h == qp_f32_to_bf16(x);
    if (t->type == QP_GGML_F16)
        return h == qp_f32_to_f16(x);
    return 0;
}

static void check_data(qp_gguf *g[3])
{
    qp_st_model *st = NULL;
    qp_err err;
    assert_int_equal(qp_st_open_dir(qp_fixture(OMNI), &st, &err), QP_OK);
    source_spec *sp = malloc(sizeof *sp);
    int checked = 0, generated = 0, splits = 0, stacks = 0, reshapes = 0;
    for (int f = 0; f < 3; f++) {
        int64_t k = qp_gguf_find_key(g[f], "qpack.omni.tensor_sources");
        for (int64_t j = 0; j < qp_gguf_tensor_count(g[f]); j++) {
            const qp_gguf_tensor *t = qp_gguf_tensor_at(g[f], j);
            char tname[96], text[16384];
            str_of(t->name, tname, sizeof tname);
            str_of(qp_gguf_arr_str(g[f], k, (uint64_t)j), text, sizeof text);
            parse_spec(text, sp);
            uint64_t n_out = (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
            if (strcmp(sp->op, "generated") == 0) {
                /* the sinusoidal table: row p = [sin(p w_i), cos(p w_i)] */
                assert_string_equal(tname, "a.position_embd.weight");
                assert_int_equal(t->type, QP_GGML_F32);
                int64_t C = t->ne[0], half = C / 2;
                const float *d = t->data;
                for (int64_t p = 0; p < t->ne[1]; p += 37)
                    for (int64_t i = 0; i < half; i++) {
                        double w = exp(-log(10000.0) / (double)(half - 1) * (double)i);
                        assert_true(fabs(d[p * C + i] - sin((double)p * w)) < 2e-3);
                        assert_true(fabs(d[p * C + half + i] - cos((double)p * w)) < 2e-3);
                    }
                generated++;
                continue;
            }
            if (strncmp(sp->op, "split_t", 7) == 0) {
                int step = atoi(sp->op + 7);
                uint64_t n;
                float *src = read_source(st, sp->names[0], &n);
                const qp_st_tensor *s = qp_st_find(st, sp->names[0]);
                int64_t co = s->shape[0], ci = s->shape[1], T = s->shape[2], P = s->shape[3];
                assert_int_equal(s->n_dims, 5);
                assert_int_equal(t->n_dims, 4);
                assert_true(t->ne[0] == P && t->ne[1] == P && t->ne[2] == ci && t->ne[3] == co);
                for (int64_t o = 0; o < co; o++)
                    for (int64_t i = 0; i < ci; i++)
                        for (int64_t e = 0; e < P * P; e++) {
                            uint64_t oi = (uint64_t)((o * ci + i) * P * P + e);
                            float x = src[((o * ci + i) * T + step) * P * P + e];
                            assert_true(element_ok(t, oi, x));
                        }
                free(src);
                splits++;
                checked++;
                continue;
            }
            /* copy / reshape / stack: the concatenation of the sources, in order */
            assert_true(strcmp(sp->op, "copy") == 0 || strcmp(sp->op, "reshape") == 0 ||
                        strcmp(sp->op, "stack") == 0);
            stacks += strcmp(sp->op, "stack") == 0;
            reshapes += strcmp(sp->op, "reshape") == 0;
            uint64_t off = 0;
            for (int s = 0; s < sp->n; s++) {
                uint64_t n;
                float *src = read_source(st, sp->names[s], &n);
                assert_true(off + n <= n_out);
                for (uint64_t e = 0; e < n; e++)
                    if (!element_ok(t, off + e, src[e])) {
                        print_error("%s element %llu differs from %s\n", tname, (unsigned long long)(off + e),
                                    sp->names[s]);
                        fail();
                    }
                off += n;
                free(src);
            }
            assert_int_equal(off, n_out);
            checked++;
        }
    }
    /* 27 thinker + 91 from-source mmproj + 214 talker tensors */
    assert_int_equal(checked, 27 + 91 + 214);
    assert_int_equal(generated, 1);
    assert_int_equal(splits, 2);
    assert_int_equal(reshapes, 3);
    assert_int_equal(stacks, 2 * 3 + 2 * 3); /* thinker and talker experts */
    free(sp);
    qp_st_close(st);
}

static void open_set(const char *stem, qp_gguf *g[3])
{
    char paths[3][4096];
    out_paths(stem, paths);
    qp_err err;
    for (int f = 0; f < 3; f++) {
        assert_int_equal(qp_gguf_open(paths[f], &g[f], &err), QP_OK);
        assert_int_equal(qp_gguf_verify_checksums(g[f], &err), QP_OK);
    }
}

/* Each file names its role and the whole set. */
static void check_manifest(qp_gguf *g[3], const char *stem)
{
    char paths[3][4096];
    out_paths(stem, paths);
    for (int f = 0; f < 3; f++) {
        qp_gguf_str s;
        char buf[256];
        assert_true(qp_gguf_get_str(g[f], "qpack.omni.component", &s));
        str_of(s, buf, sizeof buf);
        assert_string_equal(buf, ROLES[f]);
        int64_t k = qp_gguf_find_key(g[f], "qpack.omni.files");
        assert_true(k >= 0);
        assert_int_equal(qp_gguf_arr_len(g[f], k), 3);
        for (int h = 0; h < 3; h++) {
            str_of(qp_gguf_arr_str(g[f], k, (uint64_t)h), buf, sizeof buf);
            assert_string_equal(buf, strrchr(paths[h], '/') + 1);
        }
        uint64_t n = 0;
        assert_true(qp_gguf_get_u64(g[f], "qpack.omni.source_tensor_count", &n));
        assert_int_equal(n, N_SOURCE);
    }
}

static uint32_t type_of(const qp_gguf *g, const char *name)
{
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, name);
    if (!t)
        print_error("no tensor %s\n", name);
    assert_non_null(t);
    print_message("%s: %s\n", name, qp_ggml_type_name(t->type));
    return t->type;
}

static void close_set(qp_gguf *g[3])
{
    for (int f = 0; f < 3; f++)
        qp_gguf_close(g[f]);
}

static void test_bf16_every_tensor_lands_once(void **state)
{
    (void)state;
    convert("omni-bf16", "--type bf16 -t 2");
    qp_gguf *g[3];
    open_set("omni-bf16", g);
    /* the thinker is what llama.cpp's converter writes */
    assert_int_equal(qp_conventions_compare(qp_fixture("gguf-conventions/qwen3-omni-thinker-bf16.md"), g[0]), 0);
    check_manifest(g, "omni-bf16");
    check_name_map(g);
    check_data(g);
    /* llama.cpp's mmproj layout */
    assert_int_equal(type_of(g[1], "v.patch_embd.weight"), QP_GGML_F16);
    assert_int_equal(type_of(g[1], "v.patch_embd.weight.1"), QP_GGML_F16);
    assert_int_equal(type_of(g[1], "a.conv2d.1.weight"), QP_GGML_F16);
    assert_int_equal(type_of(g[1], "a.conv2d.1.bias"), QP_GGML_F32);
    assert_non_null(qp_gguf_find_tensor(g[1], "v.deepstack.1.fc2.weight"));
    assert_non_null(qp_gguf_find_tensor(g[1], "mm.a.mlp.2.weight"));
    const qp_gguf_tensor *cb = qp_gguf_find_tensor(g[1], "a.conv2d.2.bias");
    assert_true(cb->n_dims == 3 && cb->ne[0] == 1 && cb->ne[1] == 1 && cb->ne[2] == 64);
    qp_gguf_str s;
    char buf[64];
    assert_true(qp_gguf_get_str(g[1], "general.architecture", &s));
    str_of(s, buf, sizeof buf);
    assert_string_equal(buf, "clip");
    /* talker: experts stacked, router and norms F32, everything else lossless */
    const qp_gguf_tensor *ex = qp_gguf_find_tensor(g[2], "talker.blk.1.ffn_down_exps.weight");
    assert_non_null(ex);
    assert_true(ex->ne[0] == 128 && ex->ne[1] == 128 && ex->ne[2] == 4);
    assert_int_equal(type_of(g[2], "talker.blk.0.ffn_gate_inp.weight"), QP_GGML_F32);
    assert_int_equal(type_of(g[2], "talker.blk.0.ffn_gate_inp_shexp.weight"), QP_GGML_F32);
    assert_int_equal(type_of(g[2], "code2wav.decoder.1.block.2.conv1.conv.weight"), QP_GGML_BF16);
    uint64_t v = 0;
    assert_true(qp_gguf_get_u64(g[2], "qwen3omnitalker.code2wav.num_quantizers", &v));
    assert_int_equal(v, 4);
    assert_true(qp_gguf_get_u64(g[2], "qwen3omnitalker.num_code_groups", &v));
    assert_int_equal(v, 4);
    /* token ids by string from the tokenizer; ids past a vocabulary are left out */
    assert_true(qp_gguf_get_u64(g[2], "qwen3omnitalker.im_end_token_id", &v));
    assert_int_equal(v, 8191);
    assert_int_equal(qp_gguf_find_key(g[2], "qwen3omnitalker.codec_eos_token_id"), -1);
    assert_int_equal(qp_gguf_find_key(g[2], "qwen3omnitalker.tts_pad_token_id"), -1);
    close_set(g);

    /* the same tensors, byte for byte, at another thread count */
    convert("omni-bf16-t1", "--type bf16 -t 1");
    qp_gguf *h[3];
    open_set("omni-bf16", g);
    open_set("omni-bf16-t1", h);
    for (int f = 0; f < 3; f++) {
        assert_int_equal(qp_gguf_tensor_count(g[f]), qp_gguf_tensor_count(h[f]));
        assert_int_equal(qp_gguf_kv_count(g[f]), qp_gguf_kv_count(h[f]));
        for (int64_t i = 0; i < qp_gguf_tensor_count(g[f]); i++) {
            const qp_gguf_tensor *x = qp_gguf_tensor_at(g[f], i), *y = qp_gguf_tensor_at(h[f], i);
            assert_int_equal(x->nbytes, y->nbytes);
            assert_memory_equal(x->data, y->data, x->nbytes);
        }
    }
    close_set(g);
    close_set(h);
}

static void test_preset_quantizes_talker_linears(void **state)
{
    (void)state;
    /* the thinker's experts are overridden to Q8_0 only to keep this test
     * fast under the sanitizers; --tensor-type matches the written names */
    convert("omni-q4", "--type Q4_K_M --mmproj-type q8_0 --tensor-type ^blk\\.=Q8_0 "
                       "--tensor-type ^token_embd=Q8_0 --tensor-type ^output\\.=Q8_0");
    qp_gguf *g[3];
    open_set("omni-q4", g);
    check_manifest(g, "omni-q4");
    check_name_map(g);
    /* thinker: overridden matrices, norms F32 */
    assert_int_equal(type_of(g[0], "blk.0.ffn_gate_exps.weight"), QP_GGML_Q8_0);
    assert_int_equal(type_of(g[0], "output.weight"), QP_GGML_Q8_0);
    assert_int_equal(type_of(g[0], "blk.0.attn_norm.weight"), QP_GGML_F32);
    /* talker linears: rows of 128 fall back as llama-quantize does (Q4_K -> Q5_0) */
    assert_int_equal(type_of(g[2], "talker.blk.0.ffn_gate_exps.weight"), QP_GGML_Q5_0);
    assert_int_equal(type_of(g[2], "talker.blk.0.attn_q.weight"), QP_GGML_Q5_0);
    assert_int_equal(type_of(g[2], "talker.blk.0.ffn_gate_shexp.weight"), QP_GGML_Q5_0);
    assert_int_equal(type_of(g[2], "talker.output.weight"), QP_GGML_Q8_0);
    assert_int_equal(type_of(g[2], "talker.blk.0.ffn_gate_inp.weight"), QP_GGML_F32);
    assert_int_equal(type_of(g[2], "talker.blk.0.attn_norm.weight"), QP_GGML_F32);
    /* code2wav and convolutions stay float */
    assert_int_equal(type_of(g[2], "code2wav.decoder.1.block.2.conv1.conv.weight"), QP_GGML_F16);
    assert_int_equal(type_of(g[2], "code2wav.pre_transformer.blk.0.attn_q.weight"), QP_GGML_F16);
    assert_int_equal(type_of(g[2], "code2wav.decoder.1.block.0.alpha"), QP_GGML_F32);
    /* mmproj in Q8_0: linears Q8_0, convolutions F16, patch embedding F32 */
    assert_int_equal(type_of(g[1], "v.blk.0.attn_qkv.weight"), QP_GGML_Q8_0);
    assert_int_equal(type_of(g[1], "a.conv2d.2.weight"), QP_GGML_F16);
    assert_int_equal(type_of(g[1], "v.patch_embd.weight"), QP_GGML_F32);
    uint64_t ft = 0;
    assert_true(qp_gguf_get_u64(g[1], "general.file_type", &ft));
    assert_int_equal(ft, 7);
    close_set(g);
}

/* A copy of the fixture with one tensor added (or one removed). */
static void craft(const char *dir, const char *extra_name, const char *drop_name)
{
    static const char *const FILES[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
                                        "merges.txt"};
    mkdir(dir, 0755);
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char src[4096], dst[8192];
        snprintf(src, sizeof src, "%s/%s", qp_fixture(OMNI), FILES[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, FILES[i]);
        assert_int_equal(symlink(src, dst), 0);
    }
    qp_st_model *st = NULL;
    qp_err err;
    assert_int_equal(qp_st_open_dir(qp_fixture(OMNI), &st, &err), QP_OK);
    size_t n = qp_st_count(st);
    st_craft_tensor *t = calloc(n + 1, sizeof *t);
    void **raw = calloc(n, sizeof *raw);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        const qp_st_tensor *s = qp_st_at(st, i);
        if (drop_name && strcmp(s->name, drop_name) == 0)
            continue;
        raw[i] = malloc(s->nbytes);
        assert_int_equal(qp_st_read_raw(st, s, 0, raw[i], s->nbytes, &err), QP_OK);
        t[m].name = s->name;
        t[m].dtype = "BF16";
        t[m].n_dims = s->n_dims;
        memcpy(t[m].shape, s->shape, sizeof t[m].shape);
        t[m].raw = raw[i];
        m++;
    }
    if (extra_name) {
        t[m].name = extra_name;
        t[m].dtype = "BF16";
        t[m].n_dims = 1;
        t[m].shape[0] = 8;
        m++;
    }
    char path[8192];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(st_craft_write_file(path, t, m), 0);
    for (size_t i = 0; i < n; i++)
        free(raw[i]);
    free(raw);
    free(t);
    qp_st_close(st);
}

static void expect_failure(const char *dir, const char *must_name, const char *problem)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/never.gguf", g_dir);
    qp_run_result r = qp_run_qpack("convert %s -o %s -q", dir, out);
    if (r.exit_code != 2 || !strstr(r.err, must_name) || !strstr(r.err, problem))
        print_error("exit %d, stderr: %s", r.exit_code, r.err);
    assert_int_equal(r.exit_code, 2);
    assert_non_null(strstr(r.err, must_name));
    assert_non_null(strstr(r.err, problem));
    assert_false(qp_test_file_exists(out));
    qp_run_free(&r);
}

static void test_unrecognised_tensor_is_an_error(void **state)
{
    (void)state;
    static const char *const NAMES[] = {
        "talker.model.layers.0.mlp.mystery.weight", /* inside a known component */
        "code2wav.decoder.1.block.0.gain",          /* known module, unknown parameter */
        "thinker.visual.blocks.0.attn.rel_pos",     /* vision */
        "speaker_encoder.fc.weight",                /* a component we do not know */
        "thinker.model.layers.0.mlp.extra.weight",  /* the thinker's text model (convert/plan) */
    };
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/bad%zu", g_dir, i);
        craft(dir, NAMES[i], NULL);
        expect_failure(dir, NAMES[i], "unrecognised tensor");
    }
    /* a missing expert is named too */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/missing", g_dir);
    craft(dir, NULL, "talker.model.layers.1.mlp.experts.2.up_proj.weight");
    expect_failure(dir, "talker.model.layers.1.mlp.experts.2.up_proj.weight", "lacks");
}

static void test_inspect_counts_components(void **state)
{
    (void)state;
    qp_st_model *st = NULL;
    qp_err err;
    assert_int_equal(qp_st_open_dir(qp_fixture(OMNI), &st, &err), QP_OK);
    qp_omni_params pc;
    assert_int_equal(qp_omni_count_params(st, &pc, &err), QP_OK);
    uint64_t sum = 0, want[QP_OMNI_COMPONENT_COUNT] = {0};
    for (size_t i = 0; i < qp_st_count(st); i++) {
        const qp_st_tensor *t = qp_st_at(st, i);
        const char *n = t->name;
        int c = !strncmp(n, "thinker.audio_tower.", 20) ? QP_OMNI_AUDIO
                : !strncmp(n, "thinker.visual.", 15)    ? QP_OMNI_VISION
                : !strncmp(n, "thinker.", 8)            ? QP_OMNI_THINKER_TEXT
                : !strncmp(n, "talker.", 7)             ? QP_OMNI_TALKER
                                                        : QP_OMNI_CODE2WAV;
        want[c] += t->n_elems;
        sum += t->n_elems;
    }
    for (int c = 0; c < QP_OMNI_COMPONENT_COUNT; c++) {
        assert_true(want[c] > 0);
        assert_int_equal(pc.params[c], want[c]);
    }
    assert_int_equal(pc.total_params, sum);
    qp_st_close(st);

    qp_run_result r = qp_run_qpack("inspect %s", qp_fixture(OMNI));
    assert_int_equal(r.exit_code, 0);
    for (int c = 0; c < QP_OMNI_COMPONENT_COUNT; c++) {
        char line[128];
        snprintf(line, sizeof line, "%-14s %14llu", qp_omni_component_name((qp_omni_component)c),
                 (unsigned long long)want[c]);
        if (!strstr(r.out, line))
            print_error("inspect output lacks '%s':\n%s", line, r.out);
        assert_non_null(strstr(r.out, line));
    }
    qp_run_free(&r);
    r = qp_run_qpack("inspect %s --json", qp_fixture(OMNI));
    assert_int_equal(r.exit_code, 0);
    cJSON *j = cJSON_Parse(r.out);
    assert_non_null(j);
    const cJSON *talker = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "components"), "talker");
    assert_int_equal((uint64_t)cJSON_GetObjectItem(talker, "parameters")->valuedouble, want[QP_OMNI_TALKER]);
    cJSON_Delete(j);
    qp_run_free(&r);
}

/* transformers 4 spellings of the nested configs parse to the same values. */
static void test_config_spellings(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", qp_fixture(OMNI));
    size_t n;
    char *text = qp_test_read_file(path, &n);
    assert_non_null(text);
    qp_omni_config *c5 = calloc(1, sizeof *c5), *c4 = calloc(1, sizeof *c4);
    qp_omni_notes notes;
    memset(&notes, 0, sizeof notes);
    qp_err err;
    assert_int_equal(qp_omni_config_parse(text, n, path, c5, &notes, &err), QP_OK);
    for (int i = 0; i < notes.n; i++)
        print_message("note: %s\n", notes.msg[i]);
    assert_int_equal(notes.n, 0); /* every key of the fixture is understood */
    assert_int_equal(c5->thinker.arch, QP_ARCH_QWEN3_OMNI);
    assert_int_equal(c5->thinker.num_experts, 8);
    assert_int_equal(c5->n_mrope, 3);
    assert_int_equal(c5->mrope_section[0], 16);
    assert_true(c5->mrope_interleaved);
    assert_int_equal(c5->talker.num_experts, 4);
    assert_int_equal(c5->talker_shared_expert_ffn, 128);
    assert_int_equal(c5->code_predictor.num_hidden_layers, 1);
    assert_int_equal(c5->num_code_groups, 4);
    assert_int_equal(c5->vision.n_deepstack, 2);
    assert_int_equal(c5->audio.d_model, 128);
    assert_int_equal(c5->code2wav.n_upsample_rates, 4);
    assert_true(c5->thinker.rope_theta == 1e6);

    /* rewrite as transformers 4: rope_theta + rope_scaling, num_experts */
    cJSON *root = cJSON_Parse(text);
    cJSON *stacks[2] = {cJSON_GetObjectItem(cJSON_GetObjectItem(root, "thinker_config"), "text_config"),
                        cJSON_GetObjectItem(cJSON_GetObjectItem(root, "talker_config"), "text_config")};
    for (int k = 0; k < 2; k++) {
        cJSON *rp = cJSON_DetachItemFromObject(stacks[k], "rope_parameters");
        cJSON *theta = cJSON_DetachItemFromObject(rp, "rope_theta");
        cJSON_AddItemToObject(stacks[k], "rope_theta", theta);
        cJSON_AddItemToObject(stacks[k], "rope_scaling", rp);
        cJSON *ne = cJSON_DetachItemFromObject(stacks[k], "num_local_experts");
        if (ne)
            cJSON_AddItemToObject(stacks[k], "num_experts", ne);
    }
    cJSON *c2w = cJSON_GetObjectItem(root, "code2wav_config");
    cJSON *rp = cJSON_DetachItemFromObject(c2w, "rope_parameters");
    cJSON_AddItemToObject(c2w, "rope_theta", cJSON_DetachItemFromObject(rp, "rope_theta"));
    cJSON_Delete(rp);
    char *t4 = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    memset(&notes, 0, sizeof notes);
    assert_int_equal(qp_omni_config_parse(t4, strlen(t4), path, c4, &notes, &err), QP_OK);
    assert_int_equal(notes.n, 0);
    assert_int_equal(c4->thinker.num_experts, c5->thinker.num_experts);
    assert_int_equal(c4->talker.num_experts, c5->talker.num_experts);
    assert_true(c4->thinker.rope_theta == c5->thinker.rope_theta);
    assert_true(c4->talker.rope_theta == c5->talker.rope_theta);
    assert_true(c4->code2wav.rope_theta == c5->code2wav.rope_theta);
    assert_int_equal(c4->n_mrope, 3);
    assert_memory_equal(c4->mrope_section, c5->mrope_section, sizeof c5->mrope_section);
    assert_int_equal(c4->mrope_interleaved, c5->mrope_interleaved);
    assert_int_equal(c4->n_ints, c5->n_ints);
    free(t4);

    /* a wrong value names its key and where it is */
    char *bad = strdup(text);
    char *p = strstr(bad, "\"d_model\": 128");
    assert_non_null(p);
    memcpy(p, "\"d_model\": \"x\"", 14);
    assert_int_equal(qp_omni_config_parse(bad, n, path, c4, &notes, &err), QP_ERR_BAD_INPUT);
    assert_non_null(strstr(err.msg, "d_model"));
    assert_non_null(strstr(err.path, "audio_config"));
    free(bad);
    free(text);
    free(c4);
    free(c5);
}

/* The runtime hook: the thinker's text model read straight from the directory. */
static void test_open_thinker(void **state)
{
    (void)state;
    qp_hf_config *cfg = calloc(1, sizeof *cfg);
    qp_st_model *st = NULL;
    qp_plan *plan = NULL;
    int64_t mrope[4];
    qp_err err;
    assert_int_equal(qp_omni_open_thinker(qp_fixture(OMNI), cfg, mrope, &st, &plan, &err), QP_OK);
    assert_int_equal(qp_plan_count(plan), 27);
    assert_int_equal(cfg->arch, QP_ARCH_QWEN3_OMNI);
    assert_int_equal(cfg->hidden_size, 256);
    assert_true(mrope[0] == 16 && mrope[1] == 8 && mrope[2] == 8 && mrope[3] == 0);
    int64_t i = qp_plan_find(plan, "blk.1.ffn_down_exps.weight");
    assert_true(i >= 0);
    assert_int_equal(qp_plan_at(plan, i)->n_expert, 8);
    assert_true(qp_plan_find(plan, "output.weight") >= 0);
    float row[256];
    assert_int_equal(qp_plan_read_rows(plan, qp_plan_find(plan, "token_embd.weight"), 5, 1, row, &err), QP_OK);
    qp_plan_free(plan);
    qp_st_close(st);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_spellings),
        cmocka_unit_test(test_inspect_counts_components),
        cmocka_unit_test(test_bf16_every_tensor_lands_once),
        cmocka_unit_test(test_preset_quantizes_talker_linears),
        cmocka_unit_test(test_unrecognised_tensor_is_an_error),
        cmocka_unit_test(test_open_thinker),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
