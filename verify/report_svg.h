/* report_svg.h - the report's charts as inline SVG: a heatmap with a value
 * in every cell, vertical bars and horizontal bars. Each chart is one
 * well-formed <svg> element with a <title>, labelled axes and a legend; it
 * uses no scripts, fonts or external references. Colour is never the only
 * carrier of information: every cell and bar is labelled with its value,
 * the colour ramp darkens monotonically (readable in greyscale), and marked
 * cells carry a pattern as well. */
#ifndef QP_VERIFY_REPORT_SVG_H
#define QP_VERIFY_REPORT_SVG_H

#include <stdint.h>

#include "verify/strbuf.h"

/* Light-to-dark sequential colour for t in [0,1] ("#rrggbb"), and whether
 * text on it should be white. */
void qp_svg_ramp(double t, char hex[8]);
int qp_svg_ramp_dark(double t);

typedef enum {
    QP_SVG_MARK_NONE = 0,
    QP_SVG_MARK_HATCH = 1,  /* diagonal hatching */
    QP_SVG_MARK_CROSS = 2,  /* cross-hatching and a heavy outline */
} qp_svg_mark;

typedef struct {
    const char *id;            /* unique in the document: prefixes pattern ids */
    const char *title;         /* <title> of the chart */
    const char *x_label, *y_label;
    int n_rows, n_cols;
    const char *const *row_labels, *const *col_labels;
    const double *values;      /* n_rows * n_cols, row-major; NAN: no data */
    const char *const *sub_text; /* optional second line per cell (may be NULL, entries may be NULL) */
    const unsigned char *marks;  /* optional qp_svg_mark per cell */
    const char *mark_label[3];   /* legend text of marks 1 and 2 (index 0 unused) */
    double vmin, vmax;         /* colour domain */
    int log_scale;             /* colour by log10(1 + v) */
    const char *value_fmt;     /* printf format of the shown value, e.g. "%.2f" */
    double value_scale;        /* shown value = v * value_scale (0: 1) */
    int compact_values;        /* show 12345 as 12.3k */
    const char *legend_label;
    int cell_w, cell_h;        /* 0: defaults */
} qp_svg_heatmap;

void qp_svg_heatmap_write(qp_sb *b, const qp_svg_heatmap *h);

typedef struct {
    const char *id, *title, *x_label, *y_label;
    int n;
    const char *const *labels;
    const double *values;
    const char *value_fmt;
    double ref_value;          /* dashed reference line (NAN: none) */
    const char *ref_label;
    const unsigned char *hatched; /* optional per bar: draw hatched (a second series) */
    const char *hatch_label;      /* legend text for hatched bars */
    const char *plain_label;      /* legend text for plain bars */
} qp_svg_bars;

void qp_svg_bars_write(qp_sb *b, const qp_svg_bars *c);

typedef struct {
    const char *id, *title, *x_label, *y_label;
    int n;
    const char *const *labels;
    const double *values;
    const char *const *right_text; /* written after each bar */
} qp_svg_hbars;

void qp_svg_hbars_write(qp_sb *b, const qp_svg_hbars *c);

/* "12.3k", "1.2M", "512" */
void qp_svg_compact(double v, char *buf, int n);

#endif
