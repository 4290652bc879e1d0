/* cli_util.c - error lines, signals, progress display, argument parsing. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/qp_crash_files.h"

static volatile sig_atomic_t g_cancel;     /* set by the first SIGINT/SIGTERM */
static volatile sig_atomic_t g_signal_num; /* which one */

static void on_signal(int sig)
{
    if (g_cancel) { /* second signal: give up at once */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    g_signal_num = sig;
    g_cancel = 1;
}

static void write_str(const char *s) { (void)!write(STDERR_FILENO, s, strlen(s)); }

/* SIGBUS on a mapped input means the file shrank under us (another process
 * truncated or rewrote it): name it on one line, remove our temp outputs and
 * exit 1. Only async-signal-safe calls here. A SIGBUS elsewhere is a bug:
 * re-raise it with the default action. */
static void on_sigbus(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    const char *path = info ? qp_crash_map_find(info->si_addr) : NULL;
    if (!path) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    write_str("qpack: ");
    write_str(path);
    write_str(": file shrank or changed while being read (truncated by another process?)\n");
    qp_crash_tmp_unlink_all();
    _exit(CLI_EXIT_INTERNAL); /* 1: internal or I/O error */
}

void cli_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction sb;
    memset(&sb, 0, sizeof sb);
    sb.sa_sigaction = on_sigbus;
    sb.sa_flags = SA_SIGINFO;
    sigemptyset(&sb.sa_mask);
    sigaction(SIGBUS, &sb, NULL);
    /* Past RLIMIT_FSIZE a write should fail with EFBIG (reported, temp file
     * removed), not kill the process with SIGXFSZ. */
    signal(SIGXFSZ, SIG_IGN);
}

volatile sig_atomic_t *cli_cancel_flag(void) { return &g_cancel; }

int cli_signal_exit_code(void)
{
    if (!g_cancel)
        return 0;
    return g_signal_num == SIGTERM ? 143 : 130;
}

int cli_fail(const qp_err *err)
{
    char line[2048];
    qp_err_format(err, line, sizeof line);
    /* Names come from hostile files: a newline or escape sequence in a
     * tensor name must not split the one-line error or drive the terminal. */
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    fprintf(stderr, "qpack: %s\n", line);
    if (err && err->status == QP_ERR_INTERRUPTED)
        return cli_signal_exit_code() ? cli_signal_exit_code() : 130;
    /* An input file that does not exist is the user's input, not our I/O. */
    if (err && err->status == QP_ERR_IO && (err->sys_errno == ENOENT || err->sys_errno == ENOTDIR))
        return CLI_EXIT_BAD_INPUT;
    return qp_status_exit_code(err ? err->status : QP_ERR_INTERNAL);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "qpack %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'qpack %s --help')\n", cmd);
    return CLI_EXIT_BAD_INPUT;
}

int cli_is_help(const char *arg)
{
    return arg && (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0);
}

int cli_parse_int(const char *s, long long min, long long max, long long *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

int cli_parse_size(const char *s, unsigned long long *out)
{
    if (!s || !*s)
        return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return 0;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1e3; end++; break;
    case 'm': case 'M': mul = 1e6; end++; break;
    case 'g': case 'G': mul = 1e9; end++; break;
    case 't': case 'T': mul = 1e12; end++; break;
    default: break;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end || v * mul > 1.8e19)
        return 0;
    *out = (unsigned long long)(v * mul);
    return 1;
}

/* ------------------------------------------------------------- progress */

struct cli_progress {
    char label[64];
    char unit[16];
    int tty, quiet;
    double t0, last_draw;
    int last_decile;
    int drawn;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

cli_progress *cli_progress_new(const char *label, const char *unit, int quiet)
{
    cli_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
    p->tty = isatty(2);
    p->quiet = quiet;
    p->t0 = now_s();
    p->last_draw = -1;
    p->last_decile = -1;
    return p;
}

static void format_rate(const cli_progress *p, double per_s, char *buf, size_t n)
{
    if (strcmp(p->unit, "B") == 0)
        snprintf(buf, n, "%.1f MB/s", per_s / 1e6);
    else
        snprintf(buf, n, "%.1f %s/s", per_s, p->unit);
}

static void format_eta(double s, char *buf, size_t n)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, n, "--:--");
    else if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
    else
        snprintf(buf, n, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void progress_cb(void *user, uint64_t done, uint64_t total, const char *what)
{
    cli_progress *p = user;
    if (!p || p->quiet)
        return;
    double t = now_s(), el = t - p->t0;
    double frac = total ? (double)done / (double)total : 0;
    if (frac > 1)
        frac = 1;
    char rate[32], eta[32];
    double per_s = el > 0 ? (double)done / el : 0;
    format_rate(p, per_s, rate, sizeof rate);
    format_eta(per_s > 0 && total ? (double)(total - (done < total ? done : total)) / per_s : -1, eta, sizeof eta);
    if (p->tty) {
        if (done < total && p->last_draw >= 0 && t - p->last_draw < 0.16)
            return;
        p->last_draw = t;
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r\033[K%s [%s] %5.1f%% %s ETA %s %.40s", p->label, bar, frac * 100, rate, eta,
                what ? what : "");
        p->drawn = 1;
    } else {
        /* Plain lines only for work that lasts: nothing for sub-second jobs. */
        if (el < 1.0 && !p->drawn)
            return;
        p->drawn = 1;
        int decile = (int)(frac * 10);
        if (decile == p->last_decile && done < total && t - p->last_draw < 10)
            return;
        if (decile == p->last_decile && done >= total)
            return;
        p->last_decile = decile;
        p->last_draw = t;
        fprintf(stderr, "%s: %3.0f%% %s ETA %s%s%s\n", p->label, frac * 100, rate, eta, what ? " " : "",
                what ? what : "");
    }
}

qp_progress cli_progress_hook(cli_progress *p)
{
    qp_progress h = {progress_cb, p, &g_cancel};
    return h;
}

void cli_progress_free(cli_progress *p)
{
    if (!p)
        return;
    if (p->tty && p->drawn && !p->quiet)
        fputc('\n', stderr);
    free(p);
}
