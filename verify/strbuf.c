/* strbuf.c - growing text buffer with XML escaping. */
#include "verify/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

void qp_sb_init(qp_sb *b)
{
    memset(b, 0, sizeof *b);
}

void qp_sb_free(qp_sb *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int reserve(qp_sb *b, size_t extra)
{
    if (b->failed)
        return 0;
    if (extra > (size_t)-1 / 2 - b->len) {
        b->failed = 1;
        return 0;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void qp_sb_putn(qp_sb *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void qp_sb_put(qp_sb *b, const char *s)
{
    qp_sb_putn(b, s, strlen(s));
}

void qp_sb_printf(qp_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        qp_sb_putn(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void qp_sb_xml(qp_sb *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n > 0) {
        unsigned char c = *u;
        if (c < 0x80) {
            switch (c) {
            case '&': qp_sb_put(b, "&amp;"); break;
            case '<': qp_sb_put(b, "&lt;"); break;
            case '>': qp_sb_put(b, "&gt;"); break;
            case '"': qp_sb_put(b, "&quot;"); break;
            case '\'': qp_sb_put(b, "&#39;"); break;
            default:
                if (c >= 0x20 || c == '\t' || c == '\n')
                    qp_sb_putn(b, (const char *)u, 1);
            }
            u++;
            n--;
            continue;
        }
        /* File names need not be UTF-8, but an XML document must be. */
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(u, (utf8proc_ssize_t)n, &cp);
        if (k <= 0 || cp == 0xFFFE || cp == 0xFFFF) {
            qp_sb_put(b, "?");
            k = 1;
        } else {
            qp_sb_putn(b, (const char *)u, (size_t)k);
        }
        u += k;
        n -= (size_t)k;
    }
}

int qp_sb_failed(const qp_sb *b)
{
    return b->failed;
}

char *qp_sb_take(qp_sb *b, size_t *len)
{
    if (b->failed) {
        qp_sb_free(b);
        return NULL;
    }
    if (!b->p && !reserve(b, 0))
        return NULL;
    if (!b->p) {
        b->p = malloc(1);
        if (!b->p)
            return NULL;
        b->p[0] = '\0';
    }
    char *p = b->p;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}
