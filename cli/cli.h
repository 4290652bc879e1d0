/* cli.h - what every subcommand shares: error lines, exit codes, progress
 * display, signal handling, argument helpers. Only cli/ prints or exits.
 *
 * Exit codes: 0 success; 1 internal or I/O error; 2 bad input or usage;
 * 130 interrupted by SIGINT; 143 by SIGTERM. */
#ifndef QP_CLI_H
#define QP_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "common/qp_error.h"
#include "common/qp_progress.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_INTERNAL 1
#define CLI_EXIT_BAD_INPUT 2

/* Subcommand entry points (argv[0] is the subcommand name). */
int cmd_convert(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_imatrix(int argc, char **argv);
/* After opening a job with --imatrix: warn about tensors it does not cover. */
struct qp_job;
void cli_imatrix_warn(const struct qp_job *job);

/* Print "qpack: <formatted error>" to stderr; return the exit code for it
 * (an interruption maps to 130 or 143 by the signal received). */
int cli_fail(const qp_err *err);

/* Print "qpack <cmd>: <message>" and a hint to use --help; return 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Install SIGINT/SIGTERM handlers that set the flag (first signal) so long
 * work stops cleanly and temp files are removed. */
void cli_install_signal_handlers(void);
volatile sig_atomic_t *cli_cancel_flag(void);
int cli_signal_exit_code(void); /* 130 / 143 / 0 */

/* Progress on stderr: a bar with rate and ETA redrawn at most ~6 times a
 * second on a terminal; plain lines (every ~10% or 10 s) otherwise;
 * nothing with --quiet. `unit` is "B" (shown as MB/s) or a word ("tok"). */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_new(const char *label, const char *unit, int quiet);
void cli_progress_free(cli_progress *p); /* finishes the line; accepts NULL */
/* A qp_progress wired to this display and to the cancel flag. */
qp_progress cli_progress_hook(cli_progress *p);

/* Argument helpers: parse a positive integer / size with suffix K/M/G/T. */
int cli_parse_int(const char *s, long long min, long long max, long long *out);
int cli_parse_size(const char *s, unsigned long long *out);

/* True when `arg` is "-h" or "--help". */
int cli_is_help(const char *arg);

#endif
