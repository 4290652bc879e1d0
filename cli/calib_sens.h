/* calib_sens.h - `qpack calibrate --sensitivity`: after the importance
 * matrix is written, measure per-matrix sensitivities with it
 * (runtime-lite/sensitivity.h) and rewrite the file with the qpack.sens.*
 * keys (convert/sensitivity.h). */
#ifndef QP_CLI_CALIB_SENS_H
#define QP_CLI_CALIB_SENS_H

#include <stdint.h>

#include "common/qp_error.h"
#include "runtime-lite/calibrate.h"
#include "runtime-lite/model.h"

typedef struct {
    const char *model_path;
    qp_rt_model *model;
    const qp_calib_result *calib;  /* already written to out_path */
    const char *out_path;
    const int32_t *tokens;
    int64_t n_tokens, n_ctx, n_chunks;
    int n_threads, quiet;
} cli_sens_args;

/* Measure, rewrite out_path and print a short table to stdout (unless
 * json); returns an exit code (errors printed). */
int cli_calib_sensitivity(const cli_sens_args *a, int json);

#endif
