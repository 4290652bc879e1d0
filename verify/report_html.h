/* report_html.h - the quantization report as one self-contained HTML file.
 *
 * The document is XHTML-compatible (it parses as XML: every element closed,
 * only the five XML entities, UTF-8), with inline CSS and inline SVG charts,
 * no scripts and no external references, so it opens offline and prints.
 * Sections: summary and type mix; error by layer x tensor kind (heatmap,
 * plus the importance-weighted error when available) with the worst tensors
 * and any missing/extra tensors; bits per weight by layer; tokens routed to
 * each expert by layer with under-covered experts marked; perplexity, KL
 * divergence and top-1 agreement against the base; size by tensor kind.
 * A section whose input was not given says which option provides it.
 *
 * The library never prints: the text is built in memory and either handed
 * to the caller or written to a FILE* the caller opened. */
#ifndef QP_VERIFY_REPORT_HTML_H
#define QP_VERIFY_REPORT_HTML_H

#include <stddef.h>
#include <stdio.h>

#include "common/qp_error.h"
#include "verify/report_data.h"

/* The document (malloc'ed, NUL-terminated; *len gets its length when len is
 * not NULL), or NULL when memory ran out. */
char *qp_report_html(const qp_report_data *r, size_t *len);

/* Build and write to f (not closed). Write errors name `path_for_errors`. */
qp_status qp_report_html_write(const qp_report_data *r, FILE *f, const char *path_for_errors, qp_err *err);

#endif
