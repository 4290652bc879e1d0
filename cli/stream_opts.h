/* stream_opts.h - the layer-streaming options shared by `qpack ppl` and
 * `qpack calibrate` (--stream, --spill-limit, --tmpdir) and the memory
 * report printed after a streamed run. */
#ifndef QP_CLI_STREAM_OPTS_H
#define QP_CLI_STREAM_OPTS_H

#include <cjson/cJSON.h>

#include "common/qp_error.h"
#include "runtime-lite/model.h"
#include "runtime-lite/stream.h"

#define CLI_STREAM_DEFAULT_SPILL_LIMIT 4000000000ULL /* 4 GB of activations in memory */

typedef struct {
    int on;                     /* --stream */
    int limit_given, tmpdir_given;
    qp_rt_stream_opts opts;
    qp_rt_stream_stats stats;   /* filled by the run */
} cli_stream;

void cli_stream_init(cli_stream *cs);

/* If argv[*i] is one of the options, consume it (and its value) and return
 * 1; return 0 if it is not; on a bad value print the usage error and
 * return -1 (exit code 2). */
int cli_stream_arg(cli_stream *cs, const char *cmd, int argc, char **argv, int *i);

/* After parsing: --spill-limit / --tmpdir need --stream (usage error, 2). */
int cli_stream_check(const cli_stream *cs, const char *cmd);

/* The options for the library, NULL when not streaming. */
const qp_rt_stream_opts *cli_stream_opts(const cli_stream *cs);

/* Open MODEL (GGUF or HF directory) for ppl/calibrate: deferred, one layer
 * resident at a time, when streaming; else whole, with float weights
 * widened to the matmul's panels once (a few % faster, same bits) when that
 * costs at most 2 GiB. */
qp_status cli_stream_open_model(const cli_stream *cs, const char *path, int n_threads, qp_rt_model **out,
                                qp_err *err);

/* stderr: peak RSS (getrusage) and the engine's own accounting. */
void cli_stream_report(const cli_stream *cs, const char *cmd);

/* Add a "stream" object with the same figures to a JSON summary. */
void cli_stream_json(const cli_stream *cs, cJSON *o);

#endif
