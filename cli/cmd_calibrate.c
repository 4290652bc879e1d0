/* cmd_calibrate.c - `qpack calibrate` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_calibrate(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qpack calibrate: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
