/* cmd_quantize.c - `qpack quantize` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_quantize(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qpack quantize: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
