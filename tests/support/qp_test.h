/* qp_test.h - helpers shared by the cmocka tests: fixture paths, scratch
 * directories, whole-file reads, and running the qpack binary. */
#ifndef QP_TEST_H
#define QP_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "common/qp_error.h"

/* "<tests/fixtures>/<rel>" in a static rotating buffer (8 slots). */
const char *qp_fixture(const char *rel);

/* A fresh empty scratch directory unique to this process and `tag`,
 * under $QP_TEST_TMP (or /tmp). Returned string is malloc'ed. */
char *qp_test_tmpdir(const char *tag);

/* Remove a directory tree (best effort). */
void qp_test_rmtree(const char *path);

/* Read a whole file; returns malloc'ed buffer (NUL-terminated beyond size)
 * or NULL. */
void *qp_test_read_file(const char *path, size_t *size);
int qp_test_write_file(const char *path, const void *data, size_t size);
int qp_test_file_exists(const char *path);
/* A token-id fixture (raw int32 ids, e.g. "reference/tiny-tokenizer/
 * calib.ids.i32"): malloc'ed ids, their count in *n; NULL if unreadable. */
int32_t *qp_test_read_ids(const char *rel, int64_t *n);

typedef struct {
    int exit_code;   /* exit status, or 128+signal if killed */
    char *out;       /* captured stdout (malloc'ed, NUL-terminated) */
    char *err;       /* captured stderr */
} qp_run_result;

/* Run the built qpack binary with a printf-formatted argument string split
 * on spaces (no quoting; keep paths free of spaces). */
qp_run_result qp_run_qpack(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* qp_run_qpack that must succeed: asserts exit status 0, printing the
 * arguments and qpack's stderr first when it does not. */
void qp_run_qpack_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run an arbitrary shell command line. */
qp_run_result qp_run_shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void qp_run_free(qp_run_result *r);

/* Assert st == QP_OK, printing the formatted error first when not. */
void qp_assert_ok(qp_status st, const qp_err *err);

/* Count lines in s. */
int qp_count_lines(const char *s);

/* Number of entries in a directory other than "." and ".."; -1 if it
 * cannot be opened. */
int qp_test_dir_entries(const char *path);

#endif
