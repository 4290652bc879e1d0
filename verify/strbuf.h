/* strbuf.h - a growing text buffer for building documents (the HTML
 * report) in memory, with XML escaping. An allocation failure is sticky:
 * later appends do nothing and qp_sb_failed() says so, so builders check
 * once at the end instead of after every append. */
#ifndef QP_VERIFY_STRBUF_H
#define QP_VERIFY_STRBUF_H

#include <stddef.h>

typedef struct {
    char *p;
    size_t len, cap;
    int failed;
} qp_sb;

void qp_sb_init(qp_sb *b);
void qp_sb_free(qp_sb *b);
void qp_sb_put(qp_sb *b, const char *s);
void qp_sb_putn(qp_sb *b, const char *s, size_t n);
void qp_sb_printf(qp_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Text with & < > " ' escaped and control bytes (invalid in XML) dropped. */
void qp_sb_xml(qp_sb *b, const char *s);
int qp_sb_failed(const qp_sb *b);
/* Hand over the text (NUL-terminated, malloc'ed); the buffer is reset. */
char *qp_sb_take(qp_sb *b, size_t *len);

#endif
