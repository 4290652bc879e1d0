/* omni_cli.h - `qpack convert` and `qpack inspect` on a Qwen3-Omni
 * checkpoint (three output files; parameters per component). */
#ifndef QP_CLI_OMNI_H
#define QP_CLI_OMNI_H

#include <stdint.h>

#include "cli/quant_opts.h"
#include "convert/job.h"

/* Exit code. o->out is STEM.gguf; mmproj_type is F16/F32/BF16/Q8_0. */
int cli_convert_omni(const cli_quant_opts *o, const qp_job_options *jo, const char *hf_dir, uint32_t mmproj_type);

/* Parameter count per component (and the usual tensor table); exit code. */
int cli_inspect_omni(const char *hf_dir, int json);

#endif
