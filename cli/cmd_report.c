/* cmd_report.c - `qpack report` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_report(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            printf("usage: qpack report ... (not implemented in this version)\n");
            return CLI_EXIT_OK;
        }
    fprintf(stderr, "qpack report: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
