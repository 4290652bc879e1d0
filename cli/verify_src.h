/* verify_src.h - what `qpack verify --against` and `qpack report --source`
 * share: opening the source a quantized file is compared with (a Hugging
 * Face checkpoint directory, or a GGUF file such as the bf16 conversion),
 * and running the comparison with progress and an importance matrix. */
#ifndef QP_CLI_VERIFY_SRC_H
#define QP_CLI_VERIFY_SRC_H

#include "common/qp_error.h"
#include "convert/omni.h"
#include "convert/plan.h"
#include "format/gguf.h"
#include "format/imatrix.h"
#include "format/safetensors.h"
#include "verify/against.h"

typedef struct {
    qp_hf_config cfg;
    qp_st_model *st;  /* HF source */
    qp_gguf *gguf;    /* GGUF source */
    qp_plan *plan;    /* HF or GGUF source */
    qp_omni_job *omni; /* Qwen3-Omni checkpoint: one plan per output file */
} cli_source;

/* Directory -> HF checkpoint (Qwen3-Omni: the layout of its three files);
 * file -> GGUF. */
qp_status cli_source_open(const char *path, cli_source *s, qp_err *err);
void cli_source_close(cli_source *s);

/* Compare `set` with `src` (importance from `imx` when not NULL), with a
 * progress bar unless quiet. An Omni set is compared member by member with
 * the plan of the same role (tensors then carry their component); a single
 * file against an Omni checkpoint is taken as its thinker. */
qp_status cli_verify_run(const qp_fileset *set, const cli_source *src, const qp_imatrix *imx, int n_threads,
                         int quiet, qp_verify_result *out, qp_err *err);
/* Same, for an Omni set only its first member (the thinker). */
qp_status cli_verify_run_first(const qp_fileset *set, const cli_source *src, const qp_imatrix *imx, int n_threads,
                               int quiet, qp_verify_result *out, qp_err *err);

#endif
