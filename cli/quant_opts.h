/* quant_opts.h - the options `convert` and `quantize` share (type, recipe
 * adjustments, threads, output handling) and the code that runs a job. */
#ifndef QP_CLI_QUANT_OPTS_H
#define QP_CLI_QUANT_OPTS_H

#include <stdint.h>

#include "convert/job.h"

#define CLI_MAX_OVERRIDES 64

typedef struct {
    const char *out;
    const char *type;
    const char *imatrix;
    const char *covariance;      /* --covariance FILE */
    double gptq_damp;            /* --gptq-damp X (0: default) */
    long long gptq_passes;       /* --gptq-passes N (0: default) */
    int gptq_scale_imp;          /* --gptq-scale-weights feedback */
    long long gptq_refine;       /* --gptq-refine N */
    int gptq_refine_set;         /* --gptq-refine was given */
    int gptq_refit;              /* --gptq-no-refit */
    const char *out_type, *embd_type;
    const char *ov_patterns[CLI_MAX_OVERRIDES];
    char ov_buf[CLI_MAX_OVERRIDES][512];
    uint32_t ov_types[CLI_MAX_OVERRIDES];
    int n_ov;
    int force, quiet, dry_run, pure, resume;
    long long threads;
    unsigned long long split_max_bytes;
    long long split_max_tensors;
    int shard_index, shard_count;
    double target_bpw;                   /* --target-bpw (0: none) */
    unsigned long long target_size;      /* --target-size (0: none) */
    int type_given;                      /* --type (or quantize's TYPE) was given */
} cli_quant_opts;

void cli_quant_opts_init(cli_quant_opts *o, const char *default_type);

/* Try to consume argv[*i] (and its value). Returns 1 when consumed, 0 when
 * the option is not one of these, or a negative exit code (-2) after
 * printing a usage error. */
int cli_quant_opts_parse(cli_quant_opts *o, const char *cmd, int argc, char **argv, int *i);

/* Check the parsed options and fill job options; returns 0 or an exit code. */
int cli_quant_opts_finish(cli_quant_opts *o, const char *cmd, qp_job_options *jo);

/* Dry run (print the plan) or convert the job into o->out; exit code. */
int cli_quant_run(const cli_quant_opts *o, qp_job *job);

const char *cli_quant_options_help(void);

#endif
