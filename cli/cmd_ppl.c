/* cmd_ppl.c - `qpack ppl` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_ppl(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qpack ppl: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
