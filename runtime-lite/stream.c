/* stream.c - the layer-streaming engine (see stream.h).
 *
 * Two activation stores alternate: `in` holds every chunk's input to the
 * resident layer, `out` receives its outputs; at the end of a layer they
 * swap and the old inputs are forgotten. */
#include "runtime-lite/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime-lite/spill.h"

enum { STAGE_NEW, STAGE_EMBEDDED, STAGE_LAYER, STAGE_HEAD };

struct qp_rt_stream {
    const qp_rt_model *m;
    const int32_t *tokens;
    int64_t n_chunks, n_ctx, n_embd;
    int n_threads;
    qp_rt_state *state;     /* one layer's cache */
    float *x;               /* [n_ctx][E] the chunk in work */
    qp_rt_spill *in, *out;
    int stage;
    int64_t layer;          /* resident layer, or the next one to load */
    int64_t kept;           /* chunks stored into `out` for this layer */
    qp_rt_layer L;          /* resident weights of `layer` */
    qp_rt_tensor head;      /* resident output matrix (STAGE_HEAD) */
    qp_rt_stream_stats st;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void qp_rt_stream_free(qp_rt_stream *s)
{
    if (!s)
        return;
    if (s->stage == STAGE_LAYER)
        qp_rt_model_release_layer(s->m, &s->L);
    qp_rt_model_release(s->m, &s->head);
    qp_rt_state_free(s->state);
    free(s->x);
    qp_rt_spill_free(s->in);
    qp_rt_spill_free(s->out);
    free(s);
}

qp_status qp_rt_stream_new(const qp_rt_model *m, const int32_t *tokens, int64_t n_chunks, int64_t n_ctx,
                           int n_threads, const qp_rt_stream_opts *opts, qp_rt_stream **out, qp_err *err)
{
    *out = NULL;
    const qp_rt_config *c = qp_rt_model_config(m);
    if (n_chunks < 1 || n_ctx < 1 || !tokens)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "streaming needs at least one chunk of tokens");
    qp_rt_stream *s = calloc(1, sizeof *s);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (stream)");
    s->m = m;
    s->tokens = tokens;
    s->n_chunks = n_chunks;
    s->n_ctx = n_ctx;
    s->n_embd = c->n_embd;
    s->n_threads = n_threads < 1 ? 1 : n_threads;
    s->st.n_layer = c->n_layer;
    s->st.n_chunks = n_chunks;
    s->st.n_ctx = n_ctx;
    const size_t chunk_bytes = (size_t)(n_ctx * c->n_embd) * sizeof(float);
    /* inputs and outputs of a layer are both held */
    const double act = 2.0 * (double)n_chunks * (double)chunk_bytes;
    const int to_disk = act > (double)opts->spill_limit;
    qp_status st = qp_rt_state_new_layer(m, n_ctx, 0, s->n_threads, &s->state, err);
    if (st == QP_OK)
        st = qp_rt_spill_new(n_chunks, chunk_bytes, to_disk, opts->tmpdir, opts->zstd_level, &s->in, err);
    if (st == QP_OK)
        st = qp_rt_spill_new(n_chunks, chunk_bytes, to_disk, opts->tmpdir, opts->zstd_level, &s->out, err);
    if (st == QP_OK && !(s->x = malloc(chunk_bytes)))
        st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory (stream chunk buffer)");
    if (st != QP_OK) {
        qp_rt_stream_free(s);
        return st;
    }
    s->st.spilled = to_disk;
    s->st.act_ram_bytes = qp_rt_spill_ram_bytes(s->in) + qp_rt_spill_ram_bytes(s->out);
    s->st.state_bytes = qp_rt_state_bytes(s->state) + chunk_bytes;
    *out = s;
    return QP_OK;
}

void qp_rt_stream_set_observer(qp_rt_stream *s, const qp_rt_observer *obs)
{
    qp_rt_state_set_observer(s->state, obs);
}

/* Memory in use with `weights` bytes of weights resident. */
static void note_peak(qp_rt_stream *s, uint64_t weights)
{
    const uint64_t b = weights + s->st.act_ram_bytes + s->st.state_bytes;
    if (b > s->st.peak_bytes)
        s->st.peak_bytes = b;
}

static qp_status stage_error(qp_err *err, const char *what)
{
    return qp_err_set(err, QP_ERR_USAGE, NULL, "stream: %s out of order", what);
}

qp_status qp_rt_stream_embed(qp_rt_stream *s, qp_err *err)
{
    if (s->stage != STAGE_NEW)
        return stage_error(err, "embedding");
    const double t0 = now_s();
    qp_rt_tensor emb;
    qp_status st = qp_rt_model_acquire(s->m, &qp_rt_model_weights(s->m)->token_embd, &emb, err);
    if (st != QP_OK)
        return st;
    const uint64_t eb = emb.row_bytes * (uint64_t)emb.n_rows;
    if (eb > s->st.embd_bytes)
        s->st.embd_bytes = eb;
    note_peak(s, eb);
    for (int64_t k = 0; k < s->n_chunks && st == QP_OK; k++) {
        st = qp_rt_forward_embed(s->m, &emb, s->tokens + k * s->n_ctx, s->n_ctx, s->x, err);
        if (st == QP_OK)
            st = qp_rt_spill_put(s->in, k, s->x, err);
    }
    qp_rt_model_release(s->m, &emb);
    s->st.seconds += now_s() - t0;
    if (st == QP_OK)
        s->stage = STAGE_EMBEDDED;
    return st;
}

qp_status qp_rt_stream_layer_begin(qp_rt_stream *s, int64_t layer, qp_err *err)
{
    if (s->stage != STAGE_EMBEDDED || layer != s->layer)
        return stage_error(err, "layer");
    const double t0 = now_s();
    uint64_t bytes = 0;
    qp_status st = qp_rt_model_acquire_layer(s->m, layer, &s->L, &bytes, err);
    if (st != QP_OK)
        return st;
    if (bytes > s->st.layer_bytes)
        s->st.layer_bytes = bytes;
    note_peak(s, bytes);
    s->kept = 0;
    s->stage = STAGE_LAYER;
    s->st.seconds += now_s() - t0;
    return QP_OK;
}

qp_status qp_rt_stream_layer_chunk(qp_rt_stream *s, int64_t chunk, int keep, qp_err *err)
{
    if (s->stage != STAGE_LAYER)
        return stage_error(err, "chunk");
    const double t0 = now_s();
    qp_status st = qp_rt_spill_get(s->in, chunk, s->x, err);
    if (st != QP_OK)
        return st;
    qp_rt_state_reset(s->state); /* each chunk alone, from an empty cache */
    st = qp_rt_forward_layer(s->m, s->state, s->layer, &s->L, s->x, s->n_ctx, err);
    if (st == QP_OK && keep && (st = qp_rt_spill_put(s->out, chunk, s->x, err)) == QP_OK)
        s->kept++;
    s->st.seconds += now_s() - t0;
    return st;
}

qp_status qp_rt_stream_layer_end(qp_rt_stream *s, qp_err *err)
{
    if (s->stage != STAGE_LAYER)
        return stage_error(err, "layer end");
    qp_rt_model_release_layer(s->m, &s->L);
    s->stage = STAGE_EMBEDDED;
    if (s->kept != s->n_chunks)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "stream: layer %lld kept %lld of %lld chunks",
                          (long long)s->layer, (long long)s->kept, (long long)s->n_chunks);
    const uint64_t disk = qp_rt_spill_disk_bytes(s->in) + qp_rt_spill_disk_bytes(s->out);
    if (disk > s->st.spill_peak_bytes)
        s->st.spill_peak_bytes = disk;
    qp_rt_spill *t = s->in;
    s->in = s->out;
    s->out = t;
    s->layer++;
    return qp_rt_spill_reset(s->out, err);
}

qp_status qp_rt_stream_run(qp_rt_stream *s, const qp_progress *progress, qp_err *err)
{
    const int64_t n_layer = s->st.n_layer, per_layer = s->n_chunks * s->n_ctx;
    const uint64_t total = (uint64_t)per_layer;
    qp_status st = qp_rt_stream_embed(s, err);
    if (st != QP_OK)
        return st;
    qp_report(progress, 0, total, NULL);
    for (int64_t l = 0; l < n_layer; l++) {
        char what[48];
        snprintf(what, sizeof what, "layer %lld/%lld", (long long)(l + 1), (long long)n_layer);
        if ((st = qp_rt_stream_layer_begin(s, l, err)) != QP_OK)
            return st;
        for (int64_t k = 0; k < s->n_chunks; k++) {
            if (qp_cancelled(progress))
                return qp_err_set(err, QP_ERR_INTERRUPTED, NULL, "interrupted in layer %lld", (long long)l);
            if ((st = qp_rt_stream_layer_chunk(s, k, 1, err)) != QP_OK)
                return st;
            const uint64_t done = (uint64_t)((l * per_layer + (k + 1) * s->n_ctx) / n_layer);
            qp_report(progress, done, total, what);
        }
        if ((st = qp_rt_stream_layer_end(s, err)) != QP_OK)
            return st;
    }
    return QP_OK;
}

qp_status qp_rt_stream_head_begin(qp_rt_stream *s, qp_err *err)
{
    if (s->stage != STAGE_EMBEDDED || s->layer != s->st.n_layer)
        return stage_error(err, "output");
    qp_status st = qp_rt_model_acquire(s->m, &qp_rt_model_weights(s->m)->output, &s->head, err);
    if (st != QP_OK)
        return st;
    const uint64_t hb = s->head.row_bytes * (uint64_t)s->head.n_rows;
    if (hb > s->st.embd_bytes)
        s->st.embd_bytes = hb;
    note_peak(s, hb);
    s->stage = STAGE_HEAD;
    return QP_OK;
}

qp_status qp_rt_stream_logits(qp_rt_stream *s, int64_t chunk, int64_t first, int64_t n, float *logits, qp_err *err)
{
    if (s->stage != STAGE_HEAD)
        return stage_error(err, "logits");
    if (first < 0 || n < 0 || first + n > s->n_ctx)
        return qp_err_set(err, QP_ERR_USAGE, NULL, "output rows %lld..%lld outside the chunk of %lld",
                          (long long)first, (long long)(first + n), (long long)s->n_ctx);
    qp_status st = qp_rt_spill_get(s->in, chunk, s->x, err);
    if (st != QP_OK)
        return st;
    return qp_rt_forward_head(s->m, s->state, &s->head, s->x + first * s->n_embd, n, logits, err);
}

void qp_rt_stream_head_end(qp_rt_stream *s)
{
    qp_rt_model_release(s->m, &s->head);
    if (s->stage == STAGE_HEAD)
        s->stage = STAGE_EMBEDDED;
}

void qp_rt_stream_stats_get(const qp_rt_stream *s, qp_rt_stream_stats *out) { *out = s->st; }
