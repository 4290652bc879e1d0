/* stream.h - the layer-streaming engine: a model larger than memory runs
 * over many chunks with one layer's weights resident at a time.
 *
 * The chunks are those of the in-memory protocol (each n_ctx tokens, alone
 * from an empty cache, no BOS), but the loop is layer-major: for layer l,
 * its weights are made resident (qp_rt_model_acquire_layer), every chunk's
 * hidden states run through it, the outputs are stored, and the layer is
 * released. Attention stays within a chunk, so a one-layer cache suffices.
 * The hidden states of all chunks (a layer's inputs and its outputs) stay
 * in memory up to opts.spill_limit bytes, else go to zstd temp files
 * (spill.h). Every step is forward.c's own code on the same batches, so
 * logits and observer events are bit-identical to qp_rt_forward's.
 *
 * Sequence: new -> embed -> for each layer: layer_begin, layer_chunk for
 * every chunk (keep = 1), optionally more layer_chunk calls with keep = 0
 * (calibration's coverage pass), layer_end -> head_begin -> logits per
 * chunk -> head_end. qp_rt_stream_run does embed and all layers. */
#ifndef QP_RT_STREAM_H
#define QP_RT_STREAM_H

#include <stdint.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"

typedef struct {
    uint64_t spill_limit; /* activations in memory up to this many bytes, else spilled; 0: always spill */
    const char *tmpdir;   /* spill files; NULL: $TMPDIR, else /tmp */
    int zstd_level;       /* <= 0: 1 */
} qp_rt_stream_opts;

/* The engine's own memory accounting (bytes), filled as it runs. */
typedef struct {
    int64_t n_layer, n_chunks, n_ctx;
    uint64_t layer_bytes;      /* the largest layer's matrices, resident at once */
    uint64_t embd_bytes;       /* token_embd / output matrix while resident */
    uint64_t act_ram_bytes;    /* activations held in memory (inputs + outputs) */
    uint64_t state_bytes;      /* run state of one layer + a chunk buffer */
    uint64_t peak_bytes;       /* max over stages of weights + activations + state */
    uint64_t spill_peak_bytes; /* compressed activations on disk at most (0: not spilled) */
    int spilled;
    double seconds;            /* embedding and layers */
} qp_rt_stream_stats;

typedef struct qp_rt_stream qp_rt_stream;

/* tokens: n_chunks * n_ctx ids (the chunks in order). The model should be
 * opened with qp_rt_model_open_deferred (any model works: its tensors are
 * then used in place). */
qp_status qp_rt_stream_new(const qp_rt_model *m, const int32_t *tokens, int64_t n_chunks, int64_t n_ctx,
                           int n_threads, const qp_rt_stream_opts *opts, qp_rt_stream **out, qp_err *err);
void qp_rt_stream_free(qp_rt_stream *s); /* accepts NULL; releases what is resident */

/* The observer that sees layer_chunk's events (NULL removes it). */
void qp_rt_stream_set_observer(qp_rt_stream *s, const qp_rt_observer *obs);

qp_status qp_rt_stream_embed(qp_rt_stream *s, qp_err *err);
qp_status qp_rt_stream_layer_begin(qp_rt_stream *s, int64_t layer, qp_err *err); /* layers in order */
/* Run chunk k through the resident layer; keep: store the output as the
 * chunk's input to the next layer (once per chunk and layer). */
qp_status qp_rt_stream_layer_chunk(qp_rt_stream *s, int64_t chunk, int keep, qp_err *err);
qp_status qp_rt_stream_layer_end(qp_rt_stream *s, qp_err *err);

/* Embed and run every layer over every chunk. Progress: tokens through the
 * whole model (a token counts 1/n_layer per layer), `what` "layer l/L";
 * QP_ERR_INTERRUPTED when the cancel flag is raised (between chunks). */
qp_status qp_rt_stream_run(qp_rt_stream *s, const qp_progress *progress, qp_err *err);

/* After the last layer: logits[n][n_vocab] of rows first .. first+n-1 of
 * chunk k (the output matrix resident between head_begin and head_end). */
qp_status qp_rt_stream_head_begin(qp_rt_stream *s, qp_err *err);
qp_status qp_rt_stream_logits(qp_rt_stream *s, int64_t chunk, int64_t first, int64_t n, float *logits,
                              qp_err *err);
void qp_rt_stream_head_end(qp_rt_stream *s);

void qp_rt_stream_stats_get(const qp_rt_stream *s, qp_rt_stream_stats *out);

#endif
