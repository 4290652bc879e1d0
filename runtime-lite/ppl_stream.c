/* ppl_stream.c - perplexity with one layer resident at a time (see ppl.h,
 * stream.h).
 *
 * The engine runs every chunk through every layer first; then qp_ppl_run
 * scores the chunks exactly as in memory, taking each chunk's logits from
 * the engine's final hidden states instead of a forward pass. A live base
 * is streamed first the same way into a temporary base log-probability
 * file (llama.cpp's format), which the model's run then reads as
 * --base-logits: only one model is ever resident, and the statistics are
 * those of in-memory --base-logits against that file. */
#include "runtime-lite/ppl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime-lite/logits_file.h"
#include "runtime-lite/ppl_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    qp_rt_stream *eng;
    int64_t first, n_sc;
} logits_src;

static qp_status stream_logits(void *ctx, int64_t chunk, float *logits, qp_err *err)
{
    logits_src *ls = ctx;
    return qp_rt_stream_logits(ls->eng, chunk, ls->first, ls->n_sc, logits, err);
}

/* One progress display over the base's and the model's streams. */
typedef struct {
    const qp_progress *inner;
    uint64_t part, parts;
} progress_part;

static void part_cb(void *user, uint64_t done, uint64_t total, const char *what)
{
    const progress_part *pp = user;
    qp_report(pp->inner, pp->part * total + done, pp->parts * total, what);
}

static void merge_stats(qp_rt_stream_stats *acc, const qp_rt_stream_stats *s, int first)
{
    if (first) {
        *acc = *s;
        return;
    }
#define MAX_OF(f) acc->f = s->f > acc->f ? s->f : acc->f
    MAX_OF(layer_bytes);
    MAX_OF(embd_bytes);
    MAX_OF(act_ram_bytes);
    MAX_OF(state_bytes);
    MAX_OF(peak_bytes);
    MAX_OF(spill_peak_bytes);
    MAX_OF(spilled);
#undef MAX_OF
    acc->seconds += s->seconds;
}

/* Stream `m` over the chunks, then score with `run` (its model_logits set
 * here): the in-memory driver does the rest. */
static qp_status stream_and_score(const qp_ppl_job *job, const qp_rt_model *m, const int32_t *tokens, int64_t n_ctx,
                                  int64_t n_chunks, int part, qp_ppl_job *run, qp_ppl_summary *out,
                                  qp_rt_stream_stats *stats, qp_err *err)
{
    const progress_part pp = {&job->progress, (uint64_t)part, job->base ? 2 : 1};
    const qp_progress prog = {job->progress.fn ? part_cb : NULL, (void *)&pp, job->progress.cancel};
    qp_rt_stream *eng = NULL;
    qp_status st = qp_rt_stream_new(m, tokens, n_chunks, n_ctx, job->n_threads, job->stream, &eng, err);
    if (st == QP_OK)
        st = qp_rt_stream_run(eng, &prog, err);
    if (st == QP_OK)
        st = qp_rt_stream_head_begin(eng, err);
    if (st == QP_OK) {
        logits_src ls = {eng, n_ctx / 2, qp_logits_scored_per_chunk(n_ctx)};
        run->model_logits = stream_logits;
        run->model_logits_ctx = &ls;
        /* scoring is short: no second progress display, but cancellable */
        run->progress.fn = NULL;
        st = qp_ppl_run(run, out, err);
        qp_rt_stream_head_end(eng);
    }
    if (eng)
        qp_rt_stream_stats_get(eng, stats);
    qp_rt_stream_free(eng);
    return st;
}

/* A unique path for the temporary base file (the writer renames onto it). */
static qp_status temp_base_path(const qp_rt_stream_opts *o, char *path, size_t size, qp_err *err)
{
    const char *dir = o->tmpdir && o->tmpdir[0] ? o->tmpdir : getenv("TMPDIR");
    if (!dir || !dir[0])
        dir = "/tmp";
    snprintf(path, size, "%s/qpack-base-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return qp_err_io(err, dir, errno, "cannot create a temporary base log-probability file");
    close(fd);
    return QP_OK;
}

qp_status qp_ppl_run_stream(const qp_ppl_job *job, qp_ppl_summary *out, qp_err *err)
{
    memset(out, 0, sizeof *out);
    const int32_t *tokens = job->tokens;
    int64_t n_ctx = job->n_ctx, n_avail = 0;
    qp_logits_file *in = NULL;
    qp_status st = QP_OK;
    if ((st = qp_ppl_check_base(job, err)) != QP_OK)
        return st;
    /* the chunks qp_ppl_run will score (same rules and messages) */
    if (job->base_logits) {
        if ((st = qp_logits_file_open(job->base_logits, &in, err)) != QP_OK)
            return st;
        n_ctx = qp_logits_file_n_ctx(in);
        tokens = qp_logits_file_tokens(in);
        n_avail = qp_logits_file_n_chunk(in);
    } else if ((st = qp_ppl_text_chunks(job, &n_avail, err)) != QP_OK) {
        return st;
    }
    const int64_t n_chunks = job->max_chunks > 0 && job->max_chunks < n_avail ? job->max_chunks : n_avail;
    if (n_chunks <= 0) {
        qp_logits_file_close(in);
        return qp_err_set(err, QP_ERR_BAD_INPUT, job->base_logits, "no chunks to evaluate");
    }

    const double t0 = now_s();
    qp_rt_stream_stats stats, sb;
    memset(&stats, 0, sizeof stats);
    memset(&sb, 0, sizeof sb);
    char base_path[1100] = "";
    int have_base_stats = 0;
    qp_ppl_job run = *job;
    if (job->base) {
        /* the base's log-probabilities of the same chunks, to a temp file */
        if ((st = temp_base_path(job->stream, base_path, sizeof base_path, err)) != QP_OK)
            goto done;
        /* built from scratch: per-token outputs etc. of the job belong to the model's run */
        qp_ppl_job rb = {.model = job->base,
                         .tokens = tokens,
                         .n_tokens = n_chunks * n_ctx,
                         .n_ctx = n_ctx,
                         .max_chunks = n_chunks,
                         .n_threads = job->n_threads,
                         .save_logits = base_path,
                         .progress = job->progress,
                         .stream = job->stream};
        qp_ppl_summary ignored;
        st = stream_and_score(job, job->base, tokens, n_ctx, n_chunks, 0, &rb, &ignored, &sb, err);
        have_base_stats = 1;
        if (st != QP_OK)
            goto done;
        run.base = NULL;
        run.base_logits = base_path;
    }
    st = stream_and_score(job, job->model, tokens, n_ctx, n_chunks, job->base ? 1 : 0, &run, out, &stats, err);
    if (have_base_stats)
        merge_stats(&stats, &sb, 0);
    if (st == QP_OK) {
        /* the whole run, streaming included */
        out->seconds = now_s() - t0;
        out->tokens_per_second = out->seconds > 0
                                     ? (double)(n_chunks * n_ctx) * (job->base ? 2.0 : 1.0) / out->seconds
                                     : 0.0;
    }
done:
    if (base_path[0])
        (void)unlink(base_path);
    qp_logits_file_close(in);
    if (job->stream_stats)
        *job->stream_stats = stats;
    return st;
}
