/* cmd_convert.c - `qpack convert HF_DIR -o OUT.gguf --type T`. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/omni_cli.h"
#include "cli/quant_opts.h"
#include "common/qp_ggml_types.h"
#include "convert/job.h"
#include "convert/omni.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qpack convert HF_DIR -o OUT.gguf [--type TYPE] [options]\n"
            "\n"
            "Convert a Hugging Face Qwen3 / Qwen3-MoE checkpoint (safetensors shards) to GGUF\n"
            "in one streaming pass. TYPE is f32, f16, bf16 (default; lossless for bf16 sources)\n"
            "or a quantization preset choosing per-tensor types as llama.cpp's preset of the\n"
            "same name does.\n"
            "\n"
            "A Qwen3-Omni checkpoint becomes three files: OUT.gguf (thinker text model),\n"
            "mmproj-OUT.gguf (audio and vision encoders) and talker-OUT.gguf (talker and\n"
            "code2wav); see docs/omni.md.\n"
            "\n"
            "options:\n%s"
            "  --mmproj-type T          Qwen3-Omni encoders file: f16 (default), f32, bf16 or q8_0\n"
            "\n"
            "exit: 0 ok, 1 internal or I/O error, 2 bad input or usage, 130/143 interrupted\n",
            cli_quant_options_help());
}

int cmd_convert(int argc, char **argv)
{
    const char *in = NULL, *mmproj_type = "f16";
    cli_quant_opts o;
    cli_quant_opts_init(&o, "bf16");
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        if (!strcmp(argv[i], "--mmproj-type")) {
            if (i + 1 >= argc)
                return cli_usage_error("convert", "--mmproj-type needs a value");
            mmproj_type = argv[++i];
            continue;
        }
        int r = cli_quant_opts_parse(&o, "convert", argc, argv, &i);
        if (r < 0)
            return -r;
        if (r > 0)
            continue;
        if (argv[i][0] == '-')
            return cli_usage_error("convert", "unknown option '%s'", argv[i]);
        if (in)
            return cli_usage_error("convert", "unexpected argument '%s'", argv[i]);
        in = argv[i];
    }
    if (!in)
        return cli_usage_error("convert", "missing HF_DIR");
    qp_job_options jo;
    int rc = cli_quant_opts_finish(&o, "convert", &jo);
    if (rc)
        return rc;
    struct stat sb;
    if (stat(in, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "qpack: %s: not a checkpoint directory\n", in);
        return CLI_EXIT_BAD_INPUT;
    }
    if (qp_omni_is_omni_dir(in)) {
        if (o.target_bpw > 0 || o.target_size > 0)
            return cli_usage_error("convert", "--target-bpw/--target-size are not supported for Qwen3-Omni checkpoints");
        int mt = qp_ggml_type_from_name(mmproj_type);
        if (mt != QP_GGML_F16 && mt != QP_GGML_F32 && mt != QP_GGML_BF16 && mt != QP_GGML_Q8_0)
            return cli_usage_error("convert", "--mmproj-type must be f16, f32, bf16 or q8_0");
        return cli_convert_omni(&o, &jo, in, (uint32_t)mt);
    }
    qp_err err;
    qp_err_clear(&err);
    qp_job *job = NULL;
    if (qp_job_open(in, &jo, &job, &err) != QP_OK)
        return cli_fail(&err);
    cli_imatrix_warn(job);
    rc = cli_quant_run(&o, job);
    qp_job_free(job);
    return rc;
}
