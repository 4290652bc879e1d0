/* report_charts.c - the report's charts from its data. */
#include "verify/report_charts.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "verify/report_svg.h"

/* Tensor kinds in order of first appearance (file order is the natural
 * order of a block: attention, then feed-forward). */
typedef struct {
    char (*name)[64];
    int n, cap;
} kind_list;

static int kind_find(const kind_list *k, const char *s)
{
    for (int i = 0; i < k->n; i++)
        if (strcmp(k->name[i], s) == 0)
            return i;
    return -1;
}

static int kind_add(kind_list *k, const char *s)
{
    int i = kind_find(k, s);
    if (i >= 0)
        return i;
    if (k->n == k->cap) {
        int cap = k->cap ? k->cap * 2 : 16;
        char(*n)[64] = realloc(k->name, (size_t)cap * sizeof *n);
        if (!n)
            return -1;
        k->name = n;
        k->cap = cap;
    }
    snprintf(k->name[k->n], 64, "%s", s);
    return k->n++;
}

static double err_value(const qp_report_tensor *t, int weighted)
{
    if (!t->has_err)
        return NAN;
    if (weighted)
        return t->err.has_weighted ? t->err.weighted_rel_rmse : NAN;
    return t->err.rel_rmse;
}

int qp_rc_error_heatmap(qp_sb *b, const qp_report_data *r, int weighted, char *exact, size_t exact_size)
{
    if (exact_size)
        exact[0] = '\0';
    if (!r->has_errors)
        return 0;
    kind_list lk = {0}, gk = {0}, all = {0};
    /* Which kinds have any error at all (the rest are stored exactly). */
    for (int64_t i = 0; i < r->n_t; i++) {
        const qp_report_tensor *t = &r->t[i];
        double v = err_value(t, weighted);
        if (isnan(v))
            continue;
        kind_add(&all, t->kind);
        if (v > 0)
            kind_add(t->layer >= 0 ? &lk : &gk, t->kind);
    }
    size_t o = 0;
    for (int i = 0; i < all.n; i++)
        if (kind_find(&lk, all.name[i]) < 0 && kind_find(&gk, all.name[i]) < 0 && o + 1 < exact_size)
            o += (size_t)snprintf(exact + o, exact_size - o, "%s%s", o ? ", " : "", all.name[i]);
    int cols = lk.n + gk.n, rows = r->n_layers + (gk.n ? 1 : 0);
    int wrote = 0;
    double *val = NULL;
    const char **sub = NULL, **rl = NULL, **cl = NULL;
    char (*rlab)[24] = NULL;
    if (cols == 0 || rows == 0)
        goto done;
    val = malloc((size_t)rows * cols * sizeof *val);
    sub = calloc((size_t)rows * cols, sizeof *sub);
    rl = calloc((size_t)rows, sizeof *rl);
    cl = calloc((size_t)cols, sizeof *cl);
    rlab = calloc((size_t)rows, sizeof *rlab);
    if (!val || !sub || !rl || !cl || !rlab)
        goto done;
    for (int k = 0; k < rows * cols; k++)
        val[k] = NAN;
    for (int c = 0; c < lk.n; c++)
        cl[c] = lk.name[c];
    for (int c = 0; c < gk.n; c++)
        cl[lk.n + c] = gk.name[c];
    for (int l = 0; l < r->n_layers; l++) {
        snprintf(rlab[l], sizeof rlab[l], "%d", l);
        rl[l] = rlab[l];
    }
    if (gk.n)
        rl[rows - 1] = "non-layer";
    double vmax = 0, vmin = INFINITY;
    for (int64_t i = 0; i < r->n_t; i++) {
        const qp_report_tensor *t = &r->t[i];
        double v = err_value(t, weighted);
        if (isnan(v) || !(v > 0))
            continue;
        int row, col;
        if (t->layer >= 0) {
            row = t->layer;
            col = kind_find(&lk, t->kind);
        } else {
            row = rows - 1;
            col = lk.n + kind_find(&gk, t->kind);
        }
        if (col < 0 || row < 0 || row >= rows)
            continue;
        val[row * cols + col] = v;
        sub[row * cols + col] = qp_ggml_type_name(t->type);
        if (isfinite(v) && v > vmax)
            vmax = v;
        if (isfinite(v) && v < vmin)
            vmin = v;
    }
    /* The colour spans the values present, so differences between tensors
     * of one type show; the printed values carry the absolute level. */
    if (!(vmin < vmax))
        vmin = 0;
    qp_svg_heatmap h = {
        .id = weighted ? "werr" : "err",
        .title = weighted ? "Importance-weighted relative RMSE by layer and tensor kind"
                          : "Relative RMSE by layer and tensor kind",
        .x_label = "tensor kind",
        .y_label = "layer",
        .n_rows = rows, .n_cols = cols, .row_labels = rl, .col_labels = cl,
        .values = val, .sub_text = sub,
        .vmin = vmin, .vmax = vmax > 0 ? vmax : 1,
        .value_fmt = "%.2f", .value_scale = 100,
        .legend_label = weighted ? "importance-weighted relative RMSE (%)" : "relative RMSE (%)",
        .cell_w = cols > 14 ? 56 : 68,
    };
    qp_svg_heatmap_write(b, &h);
    wrote = 1;
done:
    free(val);
    free(sub);
    free(rl);
    free(cl);
    free(rlab);
    free(lk.name);
    free(gk.name);
    free(all.name);
    return wrote;
}

/* Norm vectors and other small tensors outside the blocks would dwarf the
 * scale with their 32 bits: only large ones get a bar. */
#define BIG_TENSOR 65536

int qp_rc_bpw_by_layer(qp_sb *b, const qp_report_data *r)
{
    if (!r->n_t)
        return 0;
    int n_other = 0;
    for (int64_t i = 0; i < r->n_t; i++)
        if (r->t[i].layer < 0 && r->t[i].type != UINT32_MAX && r->t[i].n_elements >= BIG_TENSOR)
            n_other++;
    int n = r->n_layers + n_other;
    if (n == 0)
        return 0;
    double *bits = calloc((size_t)n, sizeof *bits), *elems = calloc((size_t)n, sizeof *elems);
    double *val = calloc((size_t)n, sizeof *val);
    unsigned char *hatch = calloc((size_t)n, 1);
    const char **lab = calloc((size_t)n, sizeof *lab);
    char (*lb)[64] = calloc((size_t)n, sizeof *lb);
    int wrote = 0;
    if (!bits || !elems || !val || !hatch || !lab || !lb)
        goto done;
    double tb = 0, te = 0;
    int k = r->n_layers;
    for (int64_t i = 0; i < r->n_t; i++) {
        const qp_report_tensor *t = &r->t[i];
        if (t->type == UINT32_MAX)
            continue; /* missing from the file */
        tb += 8.0 * (double)t->bytes;
        te += (double)t->n_elements;
        if (t->layer >= 0) {
            bits[t->layer] += 8.0 * (double)t->bytes;
            elems[t->layer] += (double)t->n_elements;
        } else if (t->n_elements >= BIG_TENSOR && k < n) {
            bits[k] = 8.0 * (double)t->bytes;
            elems[k] = (double)t->n_elements;
            snprintf(lb[k], sizeof lb[k], "%s", t->kind);
            hatch[k] = 1;
            k++;
        }
    }
    for (int i = 0; i < n; i++) {
        val[i] = elems[i] > 0 ? bits[i] / elems[i] : NAN;
        if (i < r->n_layers)
            snprintf(lb[i], sizeof lb[i], "%d", i);
        lab[i] = lb[i];
    }
    qp_svg_bars c = {
        .id = "bpw", .title = "Bits per weight by layer", .x_label = "layer (then tensors outside the layers)",
        .y_label = "bits per weight", .n = n, .labels = lab, .values = val, .value_fmt = "%.2f",
        .ref_value = te > 0 ? tb / te : NAN, .ref_label = "whole file", .hatched = hatch,
        .hatch_label = n_other ? "tensor outside the layers" : NULL, .plain_label = "layer (all its tensors)",
    };
    qp_svg_bars_write(b, &c);
    wrote = 1;
done:
    free(bits);
    free(elems);
    free(val);
    free(hatch);
    free(lab);
    free(lb);
    return wrote;
}

int qp_rc_routing(qp_sb *b, const qp_report_data *r)
{
    if (!r->has_routing)
        return 0;
    int rows = (int)r->route_layers, cols = (int)r->route_experts;
    unsigned char *marks = calloc((size_t)rows * cols, 1);
    const char **rl = calloc((size_t)rows, sizeof *rl), **cl = calloc((size_t)cols, sizeof *cl);
    char (*rlab)[16] = calloc((size_t)rows, sizeof *rlab), (*clab)[16] = calloc((size_t)cols, sizeof *clab);
    int wrote = 0;
    if (!marks || !rl || !cl || !rlab || !clab)
        goto done;
    double vmax = 0;
    for (int l = 0; l < rows; l++) {
        snprintf(rlab[l], sizeof rlab[l], "%d", l);
        rl[l] = rlab[l];
        for (int e = 0; e < cols; e++) {
            double v = r->route_counts[l * cols + e];
            if (isfinite(v) && v > vmax)
                vmax = v;
            int cls = qp_report_route_class(r, l, e);
            marks[l * cols + e] = cls == 2 ? QP_SVG_MARK_CROSS : cls == 1 ? QP_SVG_MARK_HATCH : QP_SVG_MARK_NONE;
        }
    }
    for (int e = 0; e < cols; e++) {
        snprintf(clab[e], sizeof clab[e], "%d", e);
        cl[e] = clab[e];
    }
    char under[96];
    snprintf(under, sizeof under, "under-covered (< %.0f%% of the layer mean)", r->under_share * 100);
    int cw = cols ? 1000 / cols : 52;
    if (cw > 52)
        cw = 52;
    if (cw < 14)
        cw = 14;
    qp_svg_heatmap h = {
        .id = "route", .title = "Tokens routed to each expert, by layer",
        .x_label = "expert", .y_label = "layer",
        .n_rows = rows, .n_cols = cols, .row_labels = rl, .col_labels = cl,
        .values = r->route_counts, .marks = marks,
        .mark_label = {NULL, under, "never routed (0 tokens)"},
        .vmin = 0, .vmax = vmax > 0 ? vmax : 1, .compact_values = 1,
        .legend_label = "tokens routed (importance-matrix count)",
        .cell_w = cw, .cell_h = 26,
    };
    qp_svg_heatmap_write(b, &h);
    wrote = 1;
done:
    free(marks);
    free(rl);
    free(cl);
    free(rlab);
    free(clab);
    return wrote;
}

typedef struct {
    char kind[64];
    double bytes, elems;
    int64_t type_count[QP_GGML_TYPE_LIMIT];
} kind_size;

static int by_bytes_desc(const void *a, const void *b)
{
    const kind_size *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : strcmp(x->kind, y->kind);
}

int qp_rc_size_by_kind(qp_sb *b, const qp_report_data *r)
{
    if (!r->n_t)
        return 0;
    kind_list kl = {0};
    kind_size *ks = calloc((size_t)r->n_t, sizeof *ks);
    int wrote = 0;
    double *val = NULL;
    const char **lab = NULL, **right = NULL;
    char (*rt)[160] = NULL;
    if (!ks)
        goto done;
    double total = 0;
    for (int64_t i = 0; i < r->n_t; i++) {
        const qp_report_tensor *t = &r->t[i];
        if (t->type == UINT32_MAX)
            continue;
        int k = kind_add(&kl, t->kind);
        if (k < 0)
            goto done;
        snprintf(ks[k].kind, sizeof ks[k].kind, "%s", t->kind);
        ks[k].bytes += (double)t->bytes;
        ks[k].elems += (double)t->n_elements;
        if (t->type < QP_GGML_TYPE_LIMIT)
            ks[k].type_count[t->type]++;
        total += (double)t->bytes;
    }
    int n = kl.n;
    if (n == 0)
        goto done;
    qsort(ks, (size_t)n, sizeof *ks, by_bytes_desc);
    val = calloc((size_t)n, sizeof *val);
    lab = calloc((size_t)n, sizeof *lab);
    right = calloc((size_t)n, sizeof *right);
    rt = calloc((size_t)n, sizeof *rt);
    if (!val || !lab || !right || !rt)
        goto done;
    for (int i = 0; i < n; i++) {
        val[i] = ks[i].bytes / 1e6;
        lab[i] = ks[i].kind;
        char sz[32];
        if (ks[i].bytes >= 1e5)
            snprintf(sz, sizeof sz, "%.2f MB", ks[i].bytes / 1e6);
        else
            snprintf(sz, sizeof sz, "%.1f kB", ks[i].bytes / 1e3);
        size_t o = (size_t)snprintf(rt[i], sizeof rt[i], "%s · %.1f%% · %.2f bpw ·", sz,
                                    total > 0 ? 100 * ks[i].bytes / total : 0,
                                    ks[i].elems > 0 ? 8 * ks[i].bytes / ks[i].elems : 0);
        for (int ty = 0; ty < QP_GGML_TYPE_LIMIT && o < sizeof rt[i]; ty++)
            if (ks[i].type_count[ty])
                o += (size_t)snprintf(rt[i] + o, sizeof rt[i] - o, " %s×%lld", qp_ggml_type_name((uint32_t)ty),
                                      (long long)ks[i].type_count[ty]);
        right[i] = rt[i];
    }
    qp_svg_hbars c = {
        .id = "size", .title = "Size by tensor kind", .x_label = "megabytes (10^6 bytes) in the file",
        .y_label = "tensor kind", .n = n, .labels = lab, .values = val, .right_text = right,
    };
    qp_svg_hbars_write(b, &c);
    wrote = 1;
done:
    free(kl.name);
    free(ks);
    free(val);
    free(lab);
    free(right);
    free(rt);
    return wrote;
}
