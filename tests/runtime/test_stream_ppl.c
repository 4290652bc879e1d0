/* test_stream_ppl.c - layer-streamed evaluation (runtime-lite/stream.c,
 * ppl_stream.c, model_stream.c) against the in-memory runtime:
 *   - the logits of every scored row are bit-identical, for a dense and an
 *     MoE model, from a HF directory and from GGUFs (bf16 and Q4_K_M), with
 *     activations in memory and spilled to zstd;
 *   - qp_ppl_run with `stream` gives exactly the in-memory statistics and
 *     the same --save-logits file; a live base streamed through a temp file
 *     equals in-memory --base-logits of the in-memory base file, and so
 *     does streamed --base-logits;
 *   - a deferred model is refused by the in-memory path; cancelling stops
 *     with QP_ERR_INTERRUPTED; no temp file is left behind;
 *   - `qpack ppl --stream` prints what `qpack ppl` prints; option errors
 *     are one line with exit 2, as is a missing --tmpdir. */
/* ctest-labels: fast threads */
#include "support/qp_test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime-lite/forward.h"
#include "runtime-lite/logits_file.h"
#include "runtime-lite/model.h"
#include "runtime-lite/ppl.h"
#include "runtime-lite/stream.h"

#define CTX 64
#define CHUNKS 2

static int32_t *g_ids;
static int64_t g_n_ids;
static char *g_tmp;
static char g_dense_bf16[1024], g_moe_q4[1024];

static int setup(void **state)
{
    (void)state;
    g_ids = qp_test_read_ids("reference/tiny-tokenizer/eval.ids.i32", &g_n_ids);
    g_tmp = qp_test_tmpdir("stream-ppl");
    if (!g_ids || !g_tmp)
        return -1;
    snprintf(g_dense_bf16, sizeof g_dense_bf16, "%s/dense-bf16.gguf", g_tmp);
    snprintf(g_moe_q4, sizeof g_moe_q4, "%s/moe-q4km.gguf", g_tmp);
    qp_run_qpack_ok("convert %s -o %s --type bf16 -q -t 2", qp_fixture("models/qwen3-tiny"), g_dense_bf16);
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

static qp_rt_model *open_model(const char *path, int deferred)
{
    qp_rt_model *m = NULL;
    qp_err err;
    qp_status st = deferred ? qp_rt_model_open_deferred(path, &m, &err) : qp_rt_model_open(path, &m, &err);
    qp_assert_ok(st, &err);
    return m;
}

/* ------------------------------------------------------------ logits */

/* In memory: the scored rows of each chunk, as ppl.c asks for them. */
static float *logits_in_memory(const char *path, int64_t *n_vocab)
{
    qp_rt_model *m = open_model(path, 0);
    const int64_t V = qp_rt_model_config(m)->n_vocab, n_sc = qp_logits_scored_per_chunk(CTX);
    float *out = malloc((size_t)(CHUNKS * n_sc * V) * sizeof(float));
    assert_non_null(out);
    qp_rt_state *s = NULL;
    qp_err err;
    assert_int_equal(qp_rt_state_new(m, CTX, 0, 2, &s, &err), QP_OK);
    for (int64_t k = 0; k < CHUNKS; k++) {
        qp_rt_state_reset(s);
        assert_int_equal(qp_rt_forward(m, s, g_ids + k * CTX, CTX, CTX / 2, n_sc, out + k * n_sc * V, &err), QP_OK);
    }
    qp_rt_state_free(s);
    qp_rt_model_free(m);
    *n_vocab = V;
    return out;
}

static float *logits_streamed(const char *path, uint64_t spill_limit, qp_rt_stream_stats *stats)
{
    qp_rt_model *m = open_model(path, 1);
    const int64_t V = qp_rt_model_config(m)->n_vocab, n_sc = qp_logits_scored_per_chunk(CTX);
    float *out = malloc((size_t)(CHUNKS * n_sc * V) * sizeof(float));
    assert_non_null(out);
    const qp_rt_stream_opts o = {spill_limit, g_tmp, 1};
    qp_rt_stream *eng = NULL;
    qp_err err;
    assert_int_equal(qp_rt_stream_new(m, g_ids, CHUNKS, CTX, 2, &o, &eng, &err), QP_OK);
    assert_int_equal(qp_rt_stream_run(eng, NULL, &err), QP_OK);
    assert_int_equal(qp_rt_stream_head_begin(eng, &err), QP_OK);
    for (int64_t k = CHUNKS - 1; k >= 0; k--) /* any order */
        assert_int_equal(qp_rt_stream_logits(eng, k, CTX / 2, n_sc, out + k * n_sc * V, &err), QP_OK);
    qp_rt_stream_head_end(eng);
    qp_rt_stream_stats_get(eng, stats);
    /* out of order: a second head_begin is refused, the layers are done */
    assert_int_equal(qp_rt_stream_layer_begin(eng, 0, &err), QP_ERR_USAGE);
    qp_rt_stream_free(eng);
    assert_true(stats->layer_bytes < qp_rt_model_weight_bytes(m)); /* one layer, not the model */
    qp_rt_model_free(m);
    return out;
}

static void check_bit_exact(const char *path)
{
    int64_t V = 0;
    float *mem = logits_in_memory(path, &V);
    const size_t bytes = (size_t)(CHUNKS * qp_logits_scored_per_chunk(CTX) * V) * sizeof(float);
    const uint64_t limits[2] = {UINT64_MAX, 0}; /* in memory, always spilled */
    for (int i = 0; i < 2; i++) {
        qp_rt_stream_stats st;
        float *str = logits_streamed(path, limits[i], &st);
        assert_memory_equal(mem, str, bytes);
        assert_int_equal(st.spilled, i == 1);
        assert_int_equal(st.spill_peak_bytes > 0, i == 1);
        assert_int_equal(st.n_chunks, CHUNKS);
        assert_true(st.layer_bytes > 0 && st.peak_bytes >= st.layer_bytes + st.act_ram_bytes);
        free(str);
    }
    free(mem);
    assert_int_equal(qp_test_dir_entries(g_tmp), 2); /* only the two GGUFs: spill files never had a name */
}

static void test_logits_dense_hf(void **state)
{
    (void)state;
    check_bit_exact(qp_fixture("models/qwen3-tiny"));
}

static void test_logits_moe_hf(void **state)
{
    (void)state;
    check_bit_exact(qp_fixture("models/qwen3-moe-tiny"));
}

static void test_logits_dense_bf16_gguf(void **state)
{
    (void)state;
    check_bit_exact(g_dense_bf16);
}

static void test_logits_moe_q4_gguf(void **state)
{
    (void)state;
    check_bit_exact(g_moe_q4);
}

/* ------------------------------------------------------------ ppl jobs */

typedef struct {
    double running[8];
    int n;
} seen;

static void collect(void *user, const qp_ppl_stats *r)
{
    seen *s = user;
    if (s->n < 8)
        s->running[s->n++] = r->ppl.val;
}

static void assert_stats_equal(const qp_ppl_summary *a, const qp_ppl_summary *b)
{
    const qp_ppl_stats *x = &a->stats, *y = &b->stats;
    assert_int_equal(x->n_scored, y->n_scored);
    assert_int_equal(x->n_chunks, y->n_chunks);
    assert_int_equal(x->has_base, y->has_base);
    const double xs[] = {x->ppl.val, x->ppl.unc, x->ppl_base.val, x->ppl_base.unc, x->ln_ratio.val, x->ln_ratio.unc,
                         x->ratio.val, x->diff.val, x->cor, x->kld.val, x->kld.unc, x->p_diff.val,
                         x->p_diff_rms.val, x->same_top.val, x->max_abs_p_diff};
    const double ys[] = {y->ppl.val, y->ppl.unc, y->ppl_base.val, y->ppl_base.unc, y->ln_ratio.val, y->ln_ratio.unc,
                         y->ratio.val, y->diff.val, y->cor, y->kld.val, y->kld.unc, y->p_diff.val,
                         y->p_diff_rms.val, y->same_top.val, y->max_abs_p_diff};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++)
        if (xs[i] != ys[i])
            fail_msg("statistic %zu differs: %.17g vs %.17g", i, xs[i], ys[i]);
    assert_memory_equal(&a->kld_q, &b->kld_q, sizeof a->kld_q);
    assert_memory_equal(&a->p_diff_q, &b->p_diff_q, sizeof a->p_diff_q);
    assert_int_equal(a->n_ctx, b->n_ctx);
}

static void test_ppl_job_equal(void **state)
{
    (void)state;
    char save_a[1100], save_b[1100];
    snprintf(save_a, sizeof save_a, "%s/mem.logits", g_tmp);
    snprintf(save_b, sizeof save_b, "%s/str.logits", g_tmp);
    qp_rt_model *mm = open_model(g_moe_q4, 0), *ms = open_model(g_moe_q4, 1);
    seen sa = {{0}, 0}, sb = {{0}, 0};
    qp_ppl_job job = {.model = mm, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = CTX, .max_chunks = 3,
                      .n_threads = 2, .save_logits = save_a, .on_chunk = collect, .user = &sa};
    qp_ppl_summary a, b;
    qp_err err;
    assert_int_equal(qp_ppl_run(&job, &a, &err), QP_OK);
    const qp_rt_stream_opts o = {0, g_tmp, 2};
    qp_rt_stream_stats stats;
    memset(&stats, 0, sizeof stats);
    job.model = ms;
    job.save_logits = save_b;
    job.user = &sb;
    job.stream = &o;
    job.stream_stats = &stats;
    assert_int_equal(qp_ppl_run(&job, &b, &err), QP_OK);
    assert_stats_equal(&a, &b);
    assert_int_equal(sa.n, 3);
    assert_int_equal(sb.n, 3);
    assert_memory_equal(sa.running, sb.running, sizeof sa.running);
    assert_true(stats.spilled && stats.n_layer == qp_rt_model_config(ms)->n_layer);
    size_t na = 0, nb = 0;
    void *fa = qp_test_read_file(save_a, &na), *fb = qp_test_read_file(save_b, &nb);
    assert_non_null(fa);
    assert_non_null(fb);
    assert_int_equal(na, nb);
    assert_memory_equal(fa, fb, na);
    free(fa);
    free(fb);
    remove(save_a);
    remove(save_b);
    qp_rt_model_free(mm);
    qp_rt_model_free(ms);
}

/* A live base while streaming goes through a temporary base file: the
 * result is in-memory --base-logits of the in-memory base file. */
static void test_ppl_live_base(void **state)
{
    (void)state;
    char base_file[1100], spill_dir[1100];
    snprintf(base_file, sizeof base_file, "%s/base.logits", g_tmp);
    snprintf(spill_dir, sizeof spill_dir, "%s/spill", g_tmp);
    assert_int_equal(mkdir(spill_dir, 0700), 0);
    qp_rt_model *base = open_model(qp_fixture("models/qwen3-moe-tiny"), 0);
    qp_rt_model *model = open_model(g_moe_q4, 0);
    qp_ppl_job jb = {.model = base, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = CTX, .max_chunks = CHUNKS,
                     .n_threads = 2, .save_logits = base_file};
    qp_ppl_summary ignored, a, b;
    qp_err err;
    assert_int_equal(qp_ppl_run(&jb, &ignored, &err), QP_OK);
    qp_ppl_job ja = {.model = model, .n_threads = 2, .base_logits = base_file};
    assert_int_equal(qp_ppl_run(&ja, &a, &err), QP_OK);
    qp_rt_model_free(base);
    qp_rt_model_free(model);

    base = open_model(qp_fixture("models/qwen3-moe-tiny"), 1);
    model = open_model(g_moe_q4, 1);
    const qp_rt_stream_opts o = {0, spill_dir, 1};
    qp_ppl_job js = {.model = model, .base = base, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = CTX,
                     .max_chunks = CHUNKS, .n_threads = 2, .stream = &o};
    assert_int_equal(qp_ppl_run(&js, &b, &err), QP_OK);
    assert_true(b.stats.has_base && b.stats.kld.val > 0);
    assert_stats_equal(&a, &b);
    assert_int_equal(qp_test_dir_entries(spill_dir), 0); /* the temp base file is gone */
    /* --base-logits while streaming: the tokens and context come from the file */
    qp_ppl_summary c;
    qp_ppl_job jl = {.model = model, .n_threads = 2, .base_logits = base_file, .stream = &o};
    assert_int_equal(qp_ppl_run(&jl, &c, &err), QP_OK);
    assert_stats_equal(&a, &c);
    /* the in-memory path refuses a model opened for streaming */
    js.stream = NULL;
    js.base = NULL;
    assert_int_equal(qp_ppl_run(&js, &b, &err), QP_ERR_USAGE);
    qp_rt_state *s = NULL;
    assert_int_equal(qp_rt_state_new(model, CTX, 0, 1, &s, &err), QP_ERR_USAGE);
    assert_null(s);
    qp_rt_model_free(base);
    qp_rt_model_free(model);
    remove(base_file);
    qp_test_rmtree(spill_dir);
}

static void test_interrupt(void **state)
{
    (void)state;
    char spill_dir[1100];
    snprintf(spill_dir, sizeof spill_dir, "%s/spill-int", g_tmp);
    assert_int_equal(mkdir(spill_dir, 0700), 0);
    qp_rt_model *base = open_model(qp_fixture("models/qwen3-tiny"), 1);
    qp_rt_model *model = open_model(g_dense_bf16, 1);
    volatile sig_atomic_t cancel = 1;
    const qp_rt_stream_opts o = {0, spill_dir, 1};
    qp_ppl_job js = {.model = model, .base = base, .tokens = g_ids, .n_tokens = g_n_ids, .n_ctx = CTX,
                     .max_chunks = CHUNKS, .n_threads = 2, .stream = &o, .progress = {NULL, NULL, &cancel}};
    qp_ppl_summary b;
    qp_err err;
    assert_int_equal(qp_ppl_run(&js, &b, &err), QP_ERR_INTERRUPTED);
    assert_int_equal(qp_test_dir_entries(spill_dir), 0);
    /* too little text: the in-memory message */
    cancel = 0;
    js.n_tokens = CTX + 1;
    assert_int_equal(qp_ppl_run(&js, &b, &err), QP_ERR_BAD_INPUT);
    qp_rt_model_free(base);
    qp_rt_model_free(model);
    qp_test_rmtree(spill_dir);
}

/* ------------------------------------------------------------ CLI */

static void test_cli(void **state)
{
    (void)state;
    const char *text = qp_fixture("text/eval.txt");
    qp_run_result mem = qp_run_qpack("ppl %s --text %s -c %d --chunks %d -t 2 -q", g_moe_q4, text, CTX, CHUNKS);
    qp_run_result str = qp_run_qpack("ppl %s --text %s -c %d --chunks %d -t 2 -q --stream --spill-limit 0 --tmpdir %s",
                                     g_moe_q4, text, CTX, CHUNKS, g_tmp);
    assert_int_equal(mem.exit_code, 0);
    assert_int_equal(str.exit_code, 0);
    assert_string_equal(mem.out, str.out);
    qp_run_free(&mem);
    qp_run_free(&str);

    /* the memory report (stderr, without -q) */
    qp_run_result rep = qp_run_qpack("ppl %s --text %s -c %d --chunks 1 -t 2 --stream", g_dense_bf16, text, CTX);
    assert_int_equal(rep.exit_code, 0);
    assert_non_null(strstr(rep.err, "peak RSS"));
    assert_non_null(strstr(rep.err, "largest layer"));
    qp_run_free(&rep);

    const char *bad[] = {
        "--spill-limit 0",             /* needs --stream */
        "--tmpdir /tmp",               /* needs --stream */
        "--stream --spill-limit lots", /* not a size */
        "--stream --spill-limit",      /* no value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qp_run_result r = qp_run_qpack("ppl %s --text %s -c %d -q %s", g_moe_q4, text, CTX, bad[i]);
        if (r.exit_code != 2 || qp_count_lines(r.err) != 1)
            fail_msg("'%s': exit %d, stderr: %s", bad[i], r.exit_code, r.err);
        qp_run_free(&r);
    }
    qp_run_result io = qp_run_qpack("ppl %s --text %s -c %d --chunks 1 -q --stream --spill-limit 0 --tmpdir "
                                    "/nonexistent-qpack-dir",
                                    g_moe_q4, text, CTX);
    assert_int_equal(io.exit_code, 2); /* a missing directory is bad input (ENOENT), as elsewhere */
    assert_int_equal(qp_count_lines(io.err), 1);
    assert_non_null(strstr(io.err, "/nonexistent-qpack-dir"));
    qp_run_free(&io);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_dense_hf),
        cmocka_unit_test(test_logits_moe_hf),
        cmocka_unit_test(test_logits_dense_bf16_gguf),
        cmocka_unit_test(test_logits_moe_q4_gguf),
        cmocka_unit_test(test_ppl_job_equal),
        cmocka_unit_test(test_ppl_live_base),
        cmocka_unit_test(test_interrupt),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
