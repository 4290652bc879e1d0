/* cmd_calibrate.c - `qpack calibrate` (not implemented yet). */
#include "cli/cli.h"

#include <stdio.h>

int cmd_calibrate(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (cli_is_help(argv[i])) {
            printf("usage: qpack calibrate ... (not implemented in this version)\n");
            return CLI_EXIT_OK;
        }
    fprintf(stderr, "qpack calibrate: not implemented yet\n");
    return CLI_EXIT_INTERNAL;
}
