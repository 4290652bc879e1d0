/* qp_test.c - test helpers (see qp_test.h). */
#include "support/qp_test.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *qp_fixture(const char *rel)
{
    static char bufs[8][4096];
    static int slot;
    char *b = bufs[slot++ & 7];
    snprintf(b, 4096, "%s/%s", QP_FIXTURES, rel);
    return b;
}

char *qp_test_tmpdir(const char *tag)
{
    const char *base = getenv("QP_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s-%ld", base, tag, (long)getpid());
    qp_test_rmtree(p);
    if (mkdir(p, 0755) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void qp_test_rmtree(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        /* best effort */
    }
}

void *qp_test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    if (fseeko(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    off_t n = ftello(f);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (size)
            *size = (size_t)n;
    }
    return buf;
}

int32_t *qp_test_read_ids(const char *rel, int64_t *n)
{
    size_t size = 0;
    int32_t *ids = qp_test_read_file(qp_fixture(rel), &size);
    *n = (int64_t)(size / sizeof(int32_t));
    return ids;
}

int qp_test_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(data, 1, size, f);
    return (fclose(f) == 0 && w == size) ? 0 : -1;
}

int qp_test_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    for (;;) {
        if (len + 1024 > cap) {
            cap *= 2;
            b = realloc(b, cap);
        }
        ssize_t r = read(fd, b + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    b[len] = '\0';
    return b;
}

static qp_run_result run_cmd(const char *cmdline)
{
    qp_run_result r = {-1, NULL, NULL};
    char out_path[] = "/tmp/qp_run_out_XXXXXX", err_path[] = "/tmp/qp_run_err_XXXXXX";
    int ofd = mkstemp(out_path), efd = mkstemp(err_path);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(ofd, 1);
        dup2(efd, 2);
        execl("/bin/sh", "sh", "-c", cmdline, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    lseek(ofd, 0, SEEK_SET);
    lseek(efd, 0, SEEK_SET);
    r.out = slurp_fd(ofd);
    r.err = slurp_fd(efd);
    close(ofd);
    close(efd);
    unlink(out_path);
    unlink(err_path);
    return r;
}

qp_run_result qp_run_qpack(const char *fmt, ...)
{
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "exec '%s' %s", QP_BINARY, args);
    return run_cmd(cmd);
}

void qp_run_qpack_ok(const char *fmt, ...)
{
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    qp_run_result r = qp_run_qpack("%s", args);
    if (r.exit_code != 0)
        print_error("qpack %s: %s\n", args, r.err);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
}

qp_run_result qp_run_shell(const char *fmt, ...)
{
    char cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return run_cmd(cmd);
}

void qp_run_free(qp_run_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

void qp_assert_ok(qp_status st, const qp_err *err)
{
    if (st != QP_OK) {
        char buf[2048];
        qp_err_format(err, buf, sizeof buf);
        print_error("%s\n", buf);
    }
    assert_int_equal(st, QP_OK);
}

int qp_count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

int qp_test_dir_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}
