/* cmd_generate.c - `qpack generate` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_generate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qpack generate: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
