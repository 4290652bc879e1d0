/* main.c - the qpack binary: dispatch to one cmd_<name>.c per subcommand. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand COMMANDS[] = {
    {"convert", cmd_convert, "HF checkpoint directory -> GGUF (lossless or quantized), one streaming pass"},
    {"quantize", cmd_quantize, "requantize an F32/F16/BF16 GGUF to a preset or type"},
    {"inspect", cmd_inspect, "show architecture, hyper-parameters and tensors of a HF dir or GGUF"},
    {"verify", cmd_verify, "check a GGUF's structure and checksums"},
    {"ppl", cmd_ppl, "perplexity and KL divergence of a model on a text"},
    {"generate", cmd_generate, "greedy text generation, for a quick look"},
    {"calibrate", cmd_calibrate, "compute an importance matrix (per expert for MoE)"},
    {"imatrix", cmd_imatrix, "merge, convert or list importance matrices (llama.cpp GGUF / .dat)"},
    {"report", cmd_report, "HTML report of a quantized release"},
};

static void usage(FILE *f)
{
    fprintf(f, "qpack %s - Qwen3 safetensors to quantized GGUF, verified\n\n"
               "usage: qpack <command> [options]   (qpack <command> --help for details)\n\ncommands:\n",
            QP_VERSION);
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\nexit codes: 0 ok, 1 internal or I/O error, 2 bad input or usage, 130/143 interrupted\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_BAD_INPUT;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("qpack %s\n", QP_VERSION);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) {
            cli_install_signal_handlers();
            return COMMANDS[i].run(argc - 1, argv + 1);
        }
    fprintf(stderr, "qpack: unknown command '%s' (see 'qpack --help')\n", argv[1]);
    return CLI_EXIT_BAD_INPUT;
}
