/* cmd_report.c - `qpack report` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "qpack report: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
