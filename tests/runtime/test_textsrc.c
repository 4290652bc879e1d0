/* test_textsrc.c - evaluation text sources: plain, JSON Lines, gzip, zlib,
 * zstd, and the errors of each. */
/* ctest-labels: fast */
#include "support/qp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "runtime-lite/textsrc.h"

static size_t gzip_bytes(const char *src, size_t n, uint8_t *dst, size_t cap, int gzip)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, gzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)n;
    zs.next_out = dst;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t out = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

static void expect_text(const void *data, size_t n, const char *field, const char *name, const char *want)
{
    char *text = NULL;
    size_t len = 0;
    qp_err err;
    qp_status st = qp_text_from_memory(data, n, field, name, &text, &len, &err);
    if (st != QP_OK) {
        char buf[2048];
        qp_err_format(&err, buf, sizeof buf);
        fail_msg("%s", buf);
    }
    assert_int_equal(len, strlen(want));
    assert_string_equal(text, want);
    free(text);
}

static void expect_error(const void *data, size_t n, const char *field, const char *name)
{
    char *text = NULL;
    size_t len = 0;
    qp_err err;
    assert_int_equal(qp_text_from_memory(data, n, field, name, &text, &len, &err), QP_ERR_BAD_INPUT);
    assert_null(text);
}

static const char JSONL[] = "{\"text\": \"first doc\", \"id\": 1}\n"
                            "\n"
                            "{\"id\": 2, \"text\": \"second\\nline \\u00e9\"}\r\n"
                            "{\"text\": \"third\"}";
static const char JOINED[] = "first doc\n\nsecond\nline \xc3\xa9\n\nthird";

static void test_plain_and_jsonl(void **state)
{
    (void)state;
    expect_text("x^ plain text", 13, NULL, "a.txt", "x^ plain text");
    expect_text("", 0, NULL, "empty.txt", "");
    expect_text(JSONL, sizeof JSONL - 1, "text", "d.jsonl", JOINED);
    expect_error(JSONL, sizeof JSONL - 1, "missing", "d.jsonl");
    expect_error("{\"text\": 3}\n", 12, "text", "d.jsonl");
    expect_error("not json\n", 9, "text", "d.jsonl");
    expect_error("\n\n", 2, "text", "d.jsonl");
}

static void test_compressed(void **state)
{
    (void)state;
    uint8_t buf[4096], two[8192];
    size_t n = gzip_bytes(JSONL, sizeof JSONL - 1, buf, sizeof buf, 1);
    expect_text(buf, n, "text", "d.jsonl.gz", JOINED);
    expect_text(buf, n, NULL, "d.jsonl.gz", JSONL);
    /* two gzip members back to back read as one stream */
    memcpy(two, buf, n);
    memcpy(two + n, buf, n);
    char twice[2 * sizeof JSONL];
    snprintf(twice, sizeof twice, "%s%s", JSONL, JSONL);
    expect_text(two, 2 * n, NULL, "twice.gz", twice);
    expect_error(buf, n - 5, NULL, "cut.gz");
    /* bare zlib stream, trusted by its .gz name */
    n = gzip_bytes("hello zlib", 10, buf, sizeof buf, 0);
    expect_text(buf, n, NULL, "z.gz", "hello zlib");
    /* zstd */
    n = ZSTD_compress(buf, sizeof buf, JSONL, sizeof JSONL - 1, 3);
    assert_false(ZSTD_isError(n));
    expect_text(buf, n, "text", "d.jsonl.zst", JOINED);
    expect_error(buf, n - 4, NULL, "cut.zst");
    buf[n / 2] ^= 0x55;
    char *text = NULL;
    size_t len;
    qp_err err;
    qp_status st = qp_text_from_memory(buf, n, NULL, "bad.zst", &text, &len, &err);
    if (st == QP_OK) /* a flipped literal byte may still decode: then the text differs */
        assert_true(len != sizeof JSONL - 1 || memcmp(text, JSONL, len) != 0);
    free(text);
}

static void test_file(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    qp_err err;
    assert_int_equal(qp_text_load(qp_fixture("text/eval.txt"), NULL, &text, &len, &err), QP_OK);
    assert_int_equal(len, 400000);
    free(text);
    assert_int_equal(qp_text_load("/nonexistent/file.txt", NULL, &text, &len, &err), QP_ERR_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_jsonl),
        cmocka_unit_test(test_compressed),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
