/* cmd_quantize.c - `qpack quantize` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_quantize(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            printf("usage: qpack quantize ... (not implemented in this version)\n");
            return CLI_EXIT_OK;
        }
    fprintf(stderr, "qpack quantize: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
