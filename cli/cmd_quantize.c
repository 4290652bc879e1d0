/* cmd_quantize.c - `qpack quantize IN.gguf OUT.gguf TYPE`: requantize a
 * GGUF file (ours or llama.cpp's) with the same presets as convert. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "cli/quant_opts.h"
#include "convert/job.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qpack quantize IN.gguf OUT.gguf TYPE [options]\n"
            "\n"
            "Requantize an F32/F16/BF16 GGUF (qpack's or llama.cpp's) to TYPE, a preset or a\n"
            "block type. A Q8_0 input works with a warning (its errors add to the new ones);\n"
            "other quantized inputs are refused. Metadata is carried over; tensors are\n"
            "streamed from the mapped input.\n"
            "\n"
            "options (as for convert; -o and --type may replace the positional arguments):\n%s"
            "\n"
            "exit: 0 ok, 1 internal or I/O error, 2 bad input or usage, 130/143 interrupted\n",
            cli_quant_options_help());
}

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0;
    cli_quant_opts o;
    cli_quant_opts_init(&o, NULL);
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        int r = cli_quant_opts_parse(&o, "quantize", argc, argv, &i);
        if (r < 0)
            return -r;
        if (r > 0)
            continue;
        if (argv[i][0] == '-')
            return cli_usage_error("quantize", "unknown option '%s'", argv[i]);
        if (n_pos == 3)
            return cli_usage_error("quantize", "unexpected argument '%s'", argv[i]);
        pos[n_pos++] = argv[i];
    }
    if (!pos[0])
        return cli_usage_error("quantize", "missing IN.gguf");
    if (pos[1] && !o.out)
        o.out = pos[1];
    if (pos[2] && !o.type) {
        o.type = pos[2];
        o.type_given = 1;
    }
    if (!o.type && !(o.target_bpw > 0) && !o.target_size)
        return cli_usage_error("quantize", "missing TYPE");
    qp_job_options jo;
    int rc = cli_quant_opts_finish(&o, "quantize", &jo);
    if (rc)
        return rc;
    qp_err err;
    qp_err_clear(&err);
    qp_job *job = NULL;
    if (qp_job_open_gguf(pos[0], &jo, &job, &err) != QP_OK)
        return cli_fail(&err);
    if (qp_job_from_q8_0(job))
        fprintf(stderr, "qpack: warning: %s holds Q8_0 tensors: requantizing adds their error to the new one\n",
                pos[0]);
    cli_imatrix_warn(job);
    rc = cli_quant_run(&o, job);
    qp_job_free(job);
    return rc;
}
