/* cmd_verify.c - `qpack verify FILE.gguf`: structure and checksums. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "format/gguf.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: qpack verify FILE.gguf\n"
               "\n"
               "Validates the file's structure (every count, length, type, offset and the\n"
               "alignment) and recomputes the xxh3-64 checksum of every tensor against the\n"
               "`qpack.tensor_xxh3` array written at conversion; reports the first mismatch.\n"
               "\n"
               "exit: 0 ok, 2 bad file or checksum mismatch (or no checksums), 1 I/O error\n");
}

int cmd_verify(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("verify", "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_usage_error("verify", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!path)
        return cli_usage_error("verify", "missing FILE.gguf");
    qp_err err;
    qp_err_clear(&err);
    qp_gguf *g = NULL;
    if (qp_gguf_open(path, &g, &err) != QP_OK)
        return cli_fail(&err);
    qp_status s = qp_gguf_verify_checksums(g, &err);
    int64_t n = qp_gguf_tensor_count(g);
    qp_gguf_close(g);
    if (s == QP_ERR_NOT_FOUND) {
        qp_err_set(&err, QP_ERR_BAD_INPUT, path, "no qpack.tensor_xxh3 checksums in this file (structure is valid)");
        return cli_fail(&err);
    }
    if (s != QP_OK)
        return cli_fail(&err);
    printf("%s: OK (structure valid, %lld tensor checksums match)\n", path, (long long)n);
    return CLI_EXIT_OK;
}
