/* report_svg.c - heatmap and bar charts as inline SVG. */
#include "verify/report_svg.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define FONT "font-family=\"DejaVu Sans, Arial, Helvetica, sans-serif\""
#define CHAR_W 7.0 /* rough width of a 12px character, for layout */

/* Sequential ramp from pale yellow to dark purple (viridis, reversed): its
 * lightness falls monotonically, so it reads in greyscale too. */
static const unsigned char RAMP[9][3] = {
    {253, 231, 37}, {170, 220, 50}, {92, 200, 99}, {39, 173, 129}, {33, 144, 141},
    {44, 113, 142}, {59, 81, 139}, {71, 44, 122}, {68, 1, 84},
};

void qp_svg_ramp(double t, char hex[8])
{
    if (!(t >= 0))
        t = 0;
    if (t > 1)
        t = 1;
    double x = t * 8;
    int i = (int)x;
    if (i >= 8)
        i = 7;
    double f = x - i;
    int c[3];
    for (int k = 0; k < 3; k++)
        c[k] = (int)lround(RAMP[i][k] + (RAMP[i + 1][k] - RAMP[i][k]) * f);
    snprintf(hex, 8, "#%02x%02x%02x", c[0] & 255, c[1] & 255, c[2] & 255);
}

int qp_svg_ramp_dark(double t)
{
    return t > 0.45;
}

void qp_svg_compact(double v, char *buf, int n)
{
    double a = fabs(v);
    if (!isfinite(v))
        snprintf(buf, (size_t)n, "–");
    else if (a >= 1e9)
        snprintf(buf, (size_t)n, "%.1fG", v / 1e9);
    else if (a >= 1e6)
        snprintf(buf, (size_t)n, "%.1fM", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, (size_t)n, "%.1fk", v / 1e3);
    else if (a == floor(a))
        snprintf(buf, (size_t)n, "%.0f", v);
    else
        snprintf(buf, (size_t)n, "%.3g", v);
}

static int max_len(const char *const *s, int n)
{
    int m = 0;
    for (int i = 0; s && i < n; i++) {
        int l = s[i] ? (int)strlen(s[i]) : 0;
        if (l > m)
            m = l;
    }
    return m;
}

static double nice_step(double range, int target)
{
    if (!(range > 0))
        return 1;
    double raw = range / target, p = pow(10, floor(log10(raw))), f = raw / p;
    double s = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    return s * p;
}

static void svg_open(qp_sb *b, double w, double h, const char *title)
{
    qp_sb_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" width=\"%.0f\" height=\"%.0f\" "
                    "viewBox=\"0 0 %.0f %.0f\" " FONT " font-size=\"12\">\n<title>",
                 w, h, w, h);
    qp_sb_xml(b, title ? title : "");
    qp_sb_put(b, "</title>\n");
}

static void text(qp_sb *b, double x, double y, const char *anchor, const char *extra, const char *s)
{
    qp_sb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor, extra ? " " : "",
                 extra ? extra : "");
    qp_sb_xml(b, s);
    qp_sb_put(b, "</text>\n");
}

/* Pattern fills: hatching and cross-hatching in black, half transparent so
 * the colour and the value underneath stay readable. */
static void patterns(qp_sb *b, const char *id)
{
    qp_sb_printf(b, "<defs>\n<pattern id=\"%s-hatch\" patternUnits=\"userSpaceOnUse\" width=\"7\" height=\"7\" "
                    "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"7\" stroke=\"#000\" "
                    "stroke-width=\"2\" stroke-opacity=\"0.55\"/></pattern>\n",
                 id);
    qp_sb_printf(b, "<pattern id=\"%s-cross\" patternUnits=\"userSpaceOnUse\" width=\"7\" height=\"7\" "
                    "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"7\" stroke=\"#000\" "
                    "stroke-width=\"1.6\" stroke-opacity=\"0.6\"/><line x1=\"0\" y1=\"0\" x2=\"7\" y2=\"0\" "
                    "stroke=\"#000\" stroke-width=\"1.6\" stroke-opacity=\"0.6\"/></pattern>\n</defs>\n",
                 id);
}

/* ------------------------------------------------------------ heatmap */

static double heat_t(const qp_svg_heatmap *h, double v)
{
    double lo = h->vmin, hi = h->vmax;
    if (h->log_scale) {
        v = log10(1 + (v > 0 ? v : 0));
        lo = log10(1 + (lo > 0 ? lo : 0));
        hi = log10(1 + (hi > 0 ? hi : 0));
    }
    if (!(hi > lo))
        return 0.5;
    return (v - lo) / (hi - lo);
}

static void heat_value_text(const qp_svg_heatmap *h, double v, char *buf, int n)
{
    double s = h->value_scale > 0 ? h->value_scale : 1;
    if (h->compact_values)
        qp_svg_compact(v * s, buf, n);
    else
        snprintf(buf, (size_t)n, h->value_fmt ? h->value_fmt : "%.3g", v * s);
}

static void heat_legend(qp_sb *b, const qp_svg_heatmap *h, double x, double y)
{
    const double w = 260, bh = 12;
    qp_sb_printf(b, "<defs><linearGradient id=\"%s-grad\" x1=\"0\" y1=\"0\" x2=\"1\" y2=\"0\">", h->id);
    for (int i = 0; i <= 8; i++) {
        char c[8];
        qp_svg_ramp(i / 8.0, c);
        qp_sb_printf(b, "<stop offset=\"%.3f\" stop-color=\"%s\"/>", i / 8.0, c);
    }
    qp_sb_put(b, "</linearGradient></defs>\n");
    text(b, x, y - 6, "start", "font-weight=\"bold\"", h->legend_label ? h->legend_label : "value");
    qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.0f\" fill=\"url(#%s-grad)\" "
                    "stroke=\"#333\"/>\n",
                 x, y, w, bh, h->id);
    /* Ticks: five values evenly spaced in colour (so in log space for log scales). */
    for (int i = 0; i <= 4; i++) {
        double t = i / 4.0, v;
        if (h->log_scale) {
            double lo = log10(1 + (h->vmin > 0 ? h->vmin : 0)), hi = log10(1 + (h->vmax > 0 ? h->vmax : 0));
            v = pow(10, lo + t * (hi - lo)) - 1;
        } else {
            v = h->vmin + t * (h->vmax - h->vmin);
        }
        char lab[32];
        heat_value_text(h, v, lab, sizeof lab);
        double tx = x + t * w;
        qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", tx, y + bh,
                     tx, y + bh + 4);
        text(b, tx, y + bh + 16, "middle", "font-size=\"11\"", lab);
    }
    double mx = x + w + 30;
    for (int m = 1; m <= 2; m++) {
        if (!h->mark_label[m])
            continue;
        qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"18\" height=\"14\" fill=\"#fff\" stroke=\"#333\"/>",
                     mx, y - 1);
        qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"18\" height=\"14\" fill=\"url(#%s-%s)\" stroke=\"#000\" "
                        "stroke-width=\"%s\"/>\n",
                     mx, y - 1, h->id, m == 1 ? "hatch" : "cross", m == 2 ? "2.5" : "1");
        text(b, mx + 24, y + 10, "start", "font-size=\"11\"", h->mark_label[m]);
        mx += 24 + CHAR_W * 0.95 * (double)strlen(h->mark_label[m]) + 20;
    }
}

void qp_svg_heatmap_write(qp_sb *b, const qp_svg_heatmap *h)
{
    double cw = h->cell_w > 0 ? h->cell_w : 64, ch = h->cell_h > 0 ? h->cell_h : (h->sub_text ? 34 : 24);
    int show_values = cw >= 30 && ch >= 16;
    double left = 26 + CHAR_W * max_len(h->row_labels, h->n_rows) + 10;
    double col_lab = CHAR_W * max_len(h->col_labels, h->n_cols);
    double top = 30 + col_lab * 0.6 + 12;
    double gw = cw * h->n_cols, gh = ch * h->n_rows;
    double legend_w = 260 + 60;
    for (int m = 1; m <= 2; m++)
        if (h->mark_label[m])
            legend_w += 44 + CHAR_W * 0.95 * (double)strlen(h->mark_label[m]);
    double w = left + gw + 20 + col_lab * 0.5;
    if (w < 26 + legend_w)
        w = 26 + legend_w;
    double hgt = top + gh + 84;
    svg_open(b, w, hgt, h->title);
    patterns(b, h->id);
    /* Axis titles: columns on top, rows rotated on the left. */
    text(b, left + gw / 2, 16, "middle", "font-weight=\"bold\"", h->x_label ? h->x_label : "");
    char rot[96];
    snprintf(rot, sizeof rot, "font-weight=\"bold\" transform=\"rotate(-90 14 %.1f)\"", top + gh / 2);
    text(b, 14, top + gh / 2, "middle", rot, h->y_label ? h->y_label : "");
    for (int c = 0; c < h->n_cols; c++) {
        double x = left + cw * c + cw / 2, y = top - 6;
        char tr[96];
        snprintf(tr, sizeof tr, "transform=\"rotate(-35 %.1f %.1f)\"", x, y);
        text(b, x, y, "start", tr, h->col_labels[c] ? h->col_labels[c] : "");
    }
    for (int r = 0; r < h->n_rows; r++)
        text(b, left - 8, top + ch * r + ch / 2 + 4, "end", NULL, h->row_labels[r] ? h->row_labels[r] : "");
    for (int r = 0; r < h->n_rows; r++)
        for (int c = 0; c < h->n_cols; c++) {
            int k = r * h->n_cols + c;
            double v = h->values[k], x = left + cw * c, y = top + ch * r;
            int mark = h->marks ? h->marks[k] : 0;
            if (isnan(v)) {
                qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f4f4f4\" "
                                "stroke=\"#fff\"/>\n",
                             x, y, cw, ch);
                if (show_values)
                    text(b, x + cw / 2, y + ch / 2 + 4, "middle", "fill=\"#888\"", "–");
                continue;
            }
            double t = heat_t(h, v);
            char col[8];
            qp_svg_ramp(t, col);
            qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#fff\"/>\n",
                         x, y, cw, ch, col);
            if (mark == QP_SVG_MARK_HATCH || mark == QP_SVG_MARK_CROSS)
                qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"url(#%s-%s)\" "
                                "stroke=\"#000\" stroke-width=\"%s\"/>\n",
                             x + 1, y + 1, cw - 2, ch - 2, h->id, mark == QP_SVG_MARK_HATCH ? "hatch" : "cross",
                             mark == QP_SVG_MARK_CROSS ? "2.5" : "1");
            if (!show_values)
                continue;
            /* Text with a halo of the cell colour stays legible over hatching. */
            int dark = qp_svg_ramp_dark(t);
            char attrs[160], lab[32];
            snprintf(attrs, sizeof attrs,
                     "fill=\"%s\" stroke=\"%s\" stroke-width=\"3\" paint-order=\"stroke\" font-size=\"11\"%s",
                     dark ? "#fff" : "#000", col, mark ? " font-weight=\"bold\"" : "");
            heat_value_text(h, v, lab, sizeof lab);
            const char *sub = h->sub_text ? h->sub_text[k] : NULL;
            if (sub && ch >= 30) {
                text(b, x + cw / 2, y + ch / 2 - 1, "middle", attrs, lab);
                snprintf(attrs, sizeof attrs, "fill=\"%s\" stroke=\"%s\" stroke-width=\"3\" paint-order=\"stroke\" "
                                              "font-size=\"9\"",
                         dark ? "#fff" : "#000", col);
                text(b, x + cw / 2, y + ch / 2 + 10, "middle", attrs, sub);
            } else {
                text(b, x + cw / 2, y + ch / 2 + 4, "middle", attrs, lab);
            }
        }
    qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
                 left, top, gw, gh);
    heat_legend(b, h, 26, top + gh + 36);
    qp_sb_put(b, "</svg>\n");
}

/* ------------------------------------------------------------ bars */

static void y_axis(qp_sb *b, double left, double top, double ph, double pw, double vmax, const char *fmt)
{
    double step = nice_step(vmax, 5);
    for (double v = 0; v <= vmax * 1.0001; v += step) {
        double y = top + ph - ph * v / vmax;
        char lab[32];
        snprintf(lab, sizeof lab, fmt, v);
        qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y,
                     left + pw, y);
        text(b, left - 6, y + 4, "end", "font-size=\"11\"", lab);
    }
    qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left, top, left,
                 top + ph);
    qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left, top + ph,
                 left + pw, top + ph);
}

void qp_svg_bars_write(qp_sb *b, const qp_svg_bars *c)
{
    double vmax = 0;
    for (int i = 0; i < c->n; i++)
        if (isfinite(c->values[i]) && c->values[i] > vmax)
            vmax = c->values[i];
    if (isfinite(c->ref_value) && c->ref_value > vmax)
        vmax = c->ref_value;
    if (!(vmax > 0))
        vmax = 1;
    double step = nice_step(vmax * 1.1, 5);
    vmax = ceil(vmax * 1.1 / step) * step;
    double bw = c->n ? 880.0 / c->n : 40;
    if (bw > 64)
        bw = 64;
    if (bw < 8)
        bw = 8;
    int lab_len = max_len(c->labels, c->n);
    int rotate_x = lab_len * CHAR_W > bw - 2;
    double left = 64, top = 24, ph = 240, pw = bw * c->n;
    double xlab_h = rotate_x ? lab_len * CHAR_W * 0.72 + 10 : 18;
    double w = left + pw + 40, hgt = top + ph + xlab_h + 70;
    if (w < 560)
        w = 560;
    svg_open(b, w, hgt, c->title);
    patterns(b, c->id);
    y_axis(b, left, top, ph, pw, vmax, step < 1 ? "%.1f" : "%.0f");
    char rot[96];
    snprintf(rot, sizeof rot, "font-weight=\"bold\" transform=\"rotate(-90 16 %.1f)\"", top + ph / 2);
    text(b, 16, top + ph / 2, "middle", rot, c->y_label ? c->y_label : "");
    int value_rot = bw < 30;
    for (int i = 0; i < c->n; i++) {
        double v = c->values[i], x = left + bw * i + bw * 0.12, w_ = bw * 0.76;
        double bx = left + bw * i + bw / 2;
        if (isfinite(v) && v > 0) {
            double hh = ph * v / vmax, y = top + ph - hh;
            int hatched = c->hatched && c->hatched[i];
            qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" stroke=\"#222\"/>\n",
                         x, y, w_, hh, hatched ? "#d9d9d9" : "#5b7fa6");
            if (hatched)
                qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"url(#%s-hatch)\"/>\n",
                             x, y, w_, hh, c->id);
            char lab[32], tr[96];
            snprintf(lab, sizeof lab, c->value_fmt ? c->value_fmt : "%.2f", v);
            if (value_rot) {
                snprintf(tr, sizeof tr, "font-size=\"10\" transform=\"rotate(-90 %.1f %.1f)\"", bx + 3, y - 4);
                text(b, bx + 3, y - 4, "start", tr, lab);
            } else {
                text(b, bx, y - 4, "middle", "font-size=\"10\"", lab);
            }
        }
        const char *l = c->labels[i] ? c->labels[i] : "";
        if (rotate_x) {
            char tr[96];
            snprintf(tr, sizeof tr, "font-size=\"11\" transform=\"rotate(-45 %.1f %.1f)\"", bx + 3, top + ph + 12);
            text(b, bx + 3, top + ph + 12, "end", tr, l);
        } else {
            text(b, bx, top + ph + 15, "middle", "font-size=\"11\"", l);
        }
    }
    if (isfinite(c->ref_value)) {
        double y = top + ph - ph * c->ref_value / vmax;
        qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1.5\" "
                        "stroke-dasharray=\"6 4\"/>\n",
                     left, y, left + pw, y);
    }
    double ly = top + ph + xlab_h + 18;
    text(b, left + pw / 2, ly, "middle", "font-weight=\"bold\"", c->x_label ? c->x_label : "");
    /* Legend: bar swatches and the reference line. */
    double lx = left, lyy = ly + 26;
    if (c->plain_label) {
        qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"12\" fill=\"#5b7fa6\" stroke=\"#222\"/>",
                     lx, lyy - 10);
        text(b, lx + 22, lyy, "start", "font-size=\"11\"", c->plain_label);
        lx += 40 + CHAR_W * 0.95 * (double)strlen(c->plain_label);
    }
    if (c->hatch_label) {
        qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"12\" fill=\"#d9d9d9\" stroke=\"#222\"/>"
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"16\" height=\"12\" fill=\"url(#%s-hatch)\"/>",
                     lx, lyy - 10, lx, lyy - 10, c->id);
        text(b, lx + 22, lyy, "start", "font-size=\"11\"", c->hatch_label);
        lx += 40 + CHAR_W * 0.95 * (double)strlen(c->hatch_label);
    }
    if (isfinite(c->ref_value) && c->ref_label) {
        qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1.5\" "
                        "stroke-dasharray=\"6 4\"/>",
                     lx, lyy - 4, lx + 24, lyy - 4);
        text(b, lx + 30, lyy, "start", "font-size=\"11\"", c->ref_label);
    }
    qp_sb_put(b, "</svg>\n");
}

void qp_svg_hbars_write(qp_sb *b, const qp_svg_hbars *c)
{
    double vmax = 0;
    for (int i = 0; i < c->n; i++)
        if (isfinite(c->values[i]) && c->values[i] > vmax)
            vmax = c->values[i];
    if (!(vmax > 0))
        vmax = 1;
    double step = nice_step(vmax, 5);
    vmax = ceil(vmax / step) * step;
    double rh = 22, left = 22 + CHAR_W * max_len(c->labels, c->n) + 10, top = 10, pw = 420;
    double right = CHAR_W * 0.9 * max_len(c->right_text, c->n) + 20;
    double ph = rh * c->n, w = left + pw + right, hgt = top + ph + 56;
    svg_open(b, w, hgt, c->title);
    char rot[96];
    snprintf(rot, sizeof rot, "font-weight=\"bold\" transform=\"rotate(-90 12 %.1f)\"", top + ph / 2);
    text(b, 12, top + ph / 2, "middle", rot, c->y_label ? c->y_label : "");
    for (double v = 0; v <= vmax * 1.0001; v += step) {
        double x = left + pw * v / vmax;
        char lab[32];
        snprintf(lab, sizeof lab, step < 1 ? "%.1f" : "%.0f", v);
        qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x, top, x,
                     top + ph);
        text(b, x, top + ph + 15, "middle", "font-size=\"11\"", lab);
    }
    for (int i = 0; i < c->n; i++) {
        double y = top + rh * i, v = c->values[i];
        text(b, left - 8, y + rh / 2 + 4, "end", NULL, c->labels[i] ? c->labels[i] : "");
        double bw = isfinite(v) && v > 0 ? pw * v / vmax : 0;
        qp_sb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#5b7fa6\" stroke=\"#222\"/>\n",
                     left, y + 3, bw, rh - 6);
        if (c->right_text && c->right_text[i])
            text(b, left + bw + 6, y + rh / 2 + 4, "start", "font-size=\"11\"", c->right_text[i]);
    }
    qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left, top, left,
                 top + ph);
    qp_sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left, top + ph,
                 left + pw, top + ph);
    text(b, left + pw / 2, top + ph + 38, "middle", "font-weight=\"bold\"", c->x_label ? c->x_label : "");
    qp_sb_put(b, "</svg>\n");
}
