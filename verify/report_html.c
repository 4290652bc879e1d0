/* report_html.c - assemble the self-contained HTML report. */
#include "verify/report_html.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "verify/report_charts.h"
#include "verify/report_svg.h"
#include "verify/strbuf.h"

#ifndef QP_VERSION
#define QP_VERSION "dev"
#endif

#define WORST_SHOWN 12

static const char CSS[] =
    "body{font-family:'DejaVu Sans',Arial,Helvetica,sans-serif;color:#111;background:#fff;margin:24px auto;"
    "max-width:1180px;padding:0 16px;line-height:1.4}\n"
    "h1{font-size:26px;margin:0 0 6px}h2{font-size:20px;border-bottom:2px solid #333;padding-bottom:3px;"
    "margin-top:34px}\n"
    "table{border-collapse:collapse;margin:10px 0;font-size:13px}\n"
    "th,td{border:1px solid #777;padding:3px 8px;text-align:right;white-space:nowrap}th{background:#e8e8e8}\n"
    "td.wrap{white-space:normal;word-break:break-all}\n"
    "td.l,th.l{text-align:left}code{font-size:12px}\n"
    ".chart{overflow-x:auto;margin:8px 0}.note{color:#333;font-size:13px;max-width:900px}\n"
    ".missing{border:1px dashed #777;padding:8px 12px;font-size:13px;color:#333}\n"
    ".bad{font-weight:bold}\n"
    "@media print{.chart{overflow:visible}}\n";

static void esc(qp_sb *b, const char *s)
{
    qp_sb_xml(b, s ? s : "");
}

static void num(qp_sb *b, const char *fmt, double v)
{
    if (isfinite(v))
        qp_sb_printf(b, fmt, v);
    else if (isinf(v))
        qp_sb_put(b, v > 0 ? "∞" : "−∞");
    else
        qp_sb_put(b, "–");
}

static void td_num(qp_sb *b, const char *fmt, double v)
{
    qp_sb_put(b, "<td>");
    num(b, fmt, v);
    qp_sb_put(b, "</td>");
}

/* The last path component ("dir/model.gguf" -> "model.gguf"; a trailing
 * slash is ignored), into buf. */
static const char *base_name(const char *p, char *buf, size_t n)
{
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && p[start - 1] != '/')
        start--;
    snprintf(buf, n, "%.*s", (int)(len - start), p + start);
    return buf;
}

static void td_text(qp_sb *b, const char *s)
{
    qp_sb_put(b, "<td class=\"l\">");
    esc(b, s);
    qp_sb_put(b, "</td>");
}

static void td_wrap(qp_sb *b, const char *s)
{
    qp_sb_put(b, "<td class=\"l wrap\">");
    esc(b, s);
    qp_sb_put(b, "</td>");
}

static void missing_input(qp_sb *b, const char *what)
{
    qp_sb_put(b, "<p class=\"missing\">");
    esc(b, what);
    qp_sb_put(b, "</p>\n");
}

/* ------------------------------------------------------------ sections */

static void section_summary(qp_sb *b, const qp_report_data *r)
{
    qp_sb_put(b, "<section id=\"summary\"><h2>Summary</h2>\n<table>\n");
    if (r->has_model) {
        qp_sb_put(b, "<tr><th class=\"l\">quantized file</th>");
        td_wrap(b, r->model_path);
        qp_sb_put(b, "</tr>\n<tr><th class=\"l\">model</th>");
        char m[400];
        snprintf(m, sizeof m, "%s%s%s%s", r->model_name, r->arch[0] ? (r->model_name[0] ? " (architecture " : "architecture ") : "",
                 r->arch, r->arch[0] && r->model_name[0] ? ")" : "");
        td_wrap(b, m);
        qp_sb_printf(b, "</tr>\n<tr><th class=\"l\">files</th><td class=\"l\">%d (%.2f MB)</td></tr>\n", r->n_files,
                     (double)r->file_bytes / 1e6);
    }
    if (r->source_path[0]) {
        qp_sb_put(b, "<tr><th class=\"l\">compared with</th>");
        td_wrap(b, r->source_path);
        qp_sb_put(b, "</tr>\n");
    }
    if (r->imatrix_path[0]) {
        qp_sb_put(b, "<tr><th class=\"l\">importance matrix</th>");
        char m[1200];
        snprintf(m, sizeof m, "%s (%lld entries, %lld chunks of %lld tokens)", r->imatrix_path,
                 (long long)r->imatrix_entries, (long long)r->imatrix_chunks, (long long)r->imatrix_chunk_size);
        td_wrap(b, m);
        qp_sb_put(b, "</tr>\n");
    }
    for (int i = 0; i < r->n_ppl; i++) {
        qp_sb_put(b, "<tr><th class=\"l\">perplexity run</th>");
        td_wrap(b, r->ppl[i].path);
        qp_sb_put(b, "</tr>\n");
    }
    double tb = 0, te = 0;
    int64_t nt = 0;
    for (int64_t i = 0; i < r->n_t; i++)
        if (r->t[i].type != UINT32_MAX) {
            tb += (double)r->t[i].bytes;
            te += (double)r->t[i].n_elements;
            nt++;
        }
    if (nt) {
        qp_sb_printf(b, "<tr><th class=\"l\">tensors</th><td class=\"l\">%lld, %.0f weights, %.2f MB of tensor data, "
                        "%.3f bits per weight</td></tr>\n",
                     (long long)nt, te, tb / 1e6, te > 0 ? 8 * tb / te : 0.0);
    }
    if (r->has_errors) {
        qp_sb_put(b, "<tr><th class=\"l\">whole-model error</th><td class=\"l\">relative RMSE ");
        num(b, "%.5f", r->total_err.rel_rmse);
        qp_sb_put(b, ", cosine ");
        num(b, "%.6f", r->total_err.cosine);
        qp_sb_put(b, ", SNR ");
        num(b, "%.2f", r->total_err.snr_db);
        qp_sb_put(b, " dB");
        if (r->total_err.has_weighted) {
            qp_sb_put(b, ", importance-weighted relative RMSE ");
            num(b, "%.5f", r->total_err.weighted_rel_rmse);
        }
        qp_sb_put(b, "</td></tr>\n");
        qp_sb_printf(b, "<tr><th class=\"l\">tensor check</th><td class=\"l%s\">%lld missing, %lld extra, %lld bad"
                        "</td></tr>\n",
                     r->n_missing + r->n_extra + r->n_bad ? " bad" : "", (long long)r->n_missing,
                     (long long)r->n_extra, (long long)r->n_bad);
    }
    qp_sb_put(b, "</table>\n");
    if (nt) {
        /* Type mix. */
        qp_sb_put(b, "<table>\n<tr><th class=\"l\">type</th><th>tensors</th><th>weights</th><th>MB</th>"
                     "<th>share of bytes</th></tr>\n");
        for (uint32_t ty = 0; ty < QP_GGML_TYPE_LIMIT; ty++) {
            double bytes = 0, el = 0;
            int64_t n = 0;
            for (int64_t i = 0; i < r->n_t; i++)
                if (r->t[i].type == ty) {
                    bytes += (double)r->t[i].bytes;
                    el += (double)r->t[i].n_elements;
                    n++;
                }
            if (!n)
                continue;
            qp_sb_put(b, "<tr>");
            td_text(b, qp_ggml_type_name(ty));
            qp_sb_printf(b, "<td>%lld</td><td>%.0f</td><td>%.3f</td><td>%.1f %%</td></tr>\n", (long long)n, el,
                         bytes / 1e6, tb > 0 ? 100 * bytes / tb : 0.0);
        }
        qp_sb_put(b, "</table>\n");
    }
    qp_sb_put(b, "</section>\n");
}

static int cmp_worst(const void *a, const void *b)
{
    const qp_report_tensor *x = *(const qp_report_tensor *const *)a, *y = *(const qp_report_tensor *const *)b;
    double u = x->err.rel_rmse, v = y->err.rel_rmse;
    return u < v ? 1 : u > v ? -1 : strcmp(x->name, y->name);
}

static void worst_table(qp_sb *b, const qp_report_data *r)
{
    const qp_report_tensor **w = malloc((size_t)(r->n_t ? r->n_t : 1) * sizeof *w);
    if (!w) {
        b->failed = 1;
        return;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < r->n_t; i++)
        if (r->t[i].has_err && r->t[i].err.rel_rmse > 0)
            w[n++] = &r->t[i];
    qsort(w, (size_t)n, sizeof *w, cmp_worst);
    if (n > WORST_SHOWN)
        n = WORST_SHOWN;
    qp_sb_printf(b, "<h3>The %lld tensors with the largest relative RMSE</h3>\n<table>\n<tr><th class=\"l\">tensor"
                    "</th><th class=\"l\">type</th><th>bits/weight</th><th>relative RMSE</th><th>max |error|</th>"
                    "<th>cosine</th><th>SNR (dB)</th>%s</tr>\n",
                 (long long)n, r->has_weighted ? "<th>weighted rel. RMSE</th>" : "");
    for (int64_t i = 0; i < n; i++) {
        const qp_report_tensor *t = w[i];
        qp_sb_put(b, "<tr>");
        td_text(b, t->name);
        td_text(b, qp_ggml_type_name(t->type));
        td_num(b, "%.2f", t->n_elements ? 8.0 * (double)t->bytes / (double)t->n_elements : NAN);
        td_num(b, "%.5f", t->err.rel_rmse);
        td_num(b, "%.4g", t->err.max_abs_err);
        td_num(b, "%.6f", t->err.cosine);
        td_num(b, "%.2f", t->err.snr_db);
        if (r->has_weighted)
            td_num(b, "%.5f", t->err.has_weighted ? t->err.weighted_rel_rmse : NAN);
        qp_sb_put(b, "</tr>\n");
    }
    qp_sb_put(b, "</table>\n");
    free(w);
}

static void problems_table(qp_sb *b, const qp_report_data *r)
{
    if (!(r->n_missing + r->n_extra + r->n_bad))
        return;
    qp_sb_put(b, "<h3 class=\"bad\">Tensors that failed the check</h3>\n<table>\n<tr><th class=\"l\">tensor</th>"
                 "<th class=\"l\">problem</th></tr>\n");
    for (int64_t i = 0; i < r->n_t; i++)
        if (strcmp(r->t[i].status ? r->t[i].status : "ok", "ok") != 0) {
            qp_sb_put(b, "<tr>");
            td_text(b, r->t[i].name);
            td_text(b, r->t[i].status);
            qp_sb_put(b, "</tr>\n");
        }
    qp_sb_put(b, "</table>\n");
}

static void section_error(qp_sb *b, const qp_report_data *r)
{
    qp_sb_put(b, "<section id=\"error\"><h2>Error by layer and tensor kind</h2>\n");
    if (!r->has_errors) {
        missing_input(b, "Needs the quantized file and its source: qpack report --model OUT.gguf --source HF_DIR.");
        qp_sb_put(b, "</section>\n");
        return;
    }
    qp_sb_put(b, "<p class=\"note\">Each cell is one tensor: its relative RMSE (RMS of dequantized minus source "
                 "weights, divided by the RMS of the source weights) in percent, and below it the tensor's type. "
                 "Darker cells lost more; a dash means the layer has no tensor of that kind. The whole-model figure "
                 "is in the summary.</p>\n");
    char exact[1024];
    qp_sb_put(b, "<div class=\"chart\">\n");
    int any = qp_rc_error_heatmap(b, r, 0, exact, sizeof exact);
    qp_sb_put(b, "</div>\n");
    if (!any)
        missing_input(b, "No tensor differs from its source.");
    if (exact[0]) {
        qp_sb_put(b, "<p class=\"note\">Stored exactly (zero error, not shown): ");
        esc(b, exact);
        qp_sb_put(b, ".</p>\n");
    }
    if (r->has_weighted) {
        qp_sb_put(b, "<h3>Importance-weighted relative RMSE</h3>\n<p class=\"note\">The same error with each input "
                     "column weighted by its mean squared activation from the importance matrix "
                     "(sqrt(&#931; w e&#178; / &#931; w s&#178;)): the error where the activations are. Tensors the "
                     "matrix does not cover are blank.</p>\n<div class=\"chart\">\n");
        qp_rc_error_heatmap(b, r, 1, exact, sizeof exact);
        qp_sb_put(b, "</div>\n");
    }
    worst_table(b, r);
    problems_table(b, r);
    qp_sb_put(b, "</section>\n");
}

static void section_bpw(qp_sb *b, const qp_report_data *r)
{
    qp_sb_put(b, "<section id=\"bpw\"><h2>Bits per weight by layer</h2>\n");
    if (!r->n_t) {
        missing_input(b, "Needs the quantized file: --model OUT.gguf.");
        qp_sb_put(b, "</section>\n");
        return;
    }
    qp_sb_put(b, "<p class=\"note\">Storage bits per weight of each layer (all its tensors: bytes &#215; 8 / "
                 "weights) and of the large tensors outside the layers (hatched). The dashed line is the whole "
                 "file. A preset that gives some layers more bits shows here as taller bars.</p>\n"
                 "<div class=\"chart\">\n");
    qp_rc_bpw_by_layer(b, r);
    qp_sb_put(b, "</div>\n</section>\n");
}

static void section_routing(qp_sb *b, const qp_report_data *r)
{
    qp_sb_put(b, "<section id=\"routing\"><h2>Expert routing</h2>\n");
    if (!r->imatrix_path[0]) {
        missing_input(b, "Needs an importance matrix of a mixture-of-experts model: --imatrix F.");
        qp_sb_put(b, "</section>\n");
        return;
    }
    if (!r->has_routing) {
        missing_input(b, "The importance matrix has no stacked expert tensors (not a mixture-of-experts model).");
        qp_sb_put(b, "</section>\n");
        return;
    }
    qp_sb_put(b, "<p class=\"note\">Tokens of the calibration text that the router sent to each expert (the count "
                 "the importance matrix recorded for <code>");
    esc(b, r->route_entry);
    qp_sb_printf(b, "</code>). An expert that saw few tokens has an importance vector estimated from little data, "
                    "so its quantization is less well guided; one that saw none is quantized without importance "
                    "weights. Hatched: under-covered, fewer than %.0f%% of the layer's mean count. Cross-hatched with "
                    "a heavy border: never routed.</p>\n<div class=\"chart\">\n",
                 r->under_share * 100);
    qp_rc_routing(b, r);
    qp_sb_put(b, "</div>\n");
    /* The same facts as text, for readers who cannot see the marks. */
    qp_sb_put(b, "<table>\n<tr><th>layer</th><th>tokens routed</th><th class=\"l\">never routed</th>"
                 "<th class=\"l\">under-covered (count)</th></tr>\n");
    for (int64_t l = 0; l < r->route_layers; l++) {
        double sum = 0;
        for (int64_t e = 0; e < r->route_experts; e++) {
            double v = r->route_counts[l * r->route_experts + e];
            if (isfinite(v))
                sum += v;
        }
        qp_sb_printf(b, "<tr><td>%lld</td><td>%.0f</td><td class=\"l\">", (long long)l, sum);
        int first = 1;
        for (int64_t e = 0; e < r->route_experts; e++)
            if (qp_report_route_class(r, l, e) == 2) {
                qp_sb_printf(b, "%s%lld", first ? "" : ", ", (long long)e);
                first = 0;
            }
        qp_sb_put(b, first ? "none" : "");
        qp_sb_put(b, "</td><td class=\"l\">");
        first = 1;
        for (int64_t e = 0; e < r->route_experts; e++)
            if (qp_report_route_class(r, l, e) == 1) {
                qp_sb_printf(b, "%s%lld (%.0f)", first ? "" : ", ", (long long)e,
                             r->route_counts[l * r->route_experts + e]);
                first = 0;
            }
        qp_sb_put(b, first ? "none" : "");
        qp_sb_put(b, "</td></tr>\n");
    }
    qp_sb_put(b, "</table>\n</section>\n");
}

static void est_cell(qp_sb *b, const char *fmt, qp_report_est e, double scale)
{
    qp_sb_put(b, "<td>");
    num(b, fmt, e.value * scale);
    if (isfinite(e.stderr_)) {
        qp_sb_put(b, "<br/><small>± ");
        num(b, fmt, e.stderr_ * scale);
        qp_sb_put(b, "</small>");
    }
    qp_sb_put(b, "</td>");
}

static void section_ppl(qp_sb *b, const qp_report_data *r)
{
    qp_sb_put(b, "<section id=\"ppl\"><h2>Perplexity and KL divergence against the base</h2>\n");
    if (!r->n_ppl) {
        missing_input(b, "Needs the JSON of qpack ppl MODEL --text FILE --base BASE --json: --ppl FILE "
                         "(repeatable).");
        qp_sb_put(b, "</section>\n");
        return;
    }
    qp_sb_put(b, "<p class=\"note\">From <code>qpack ppl --base --json</code>: perplexity of the quantized model "
                 "and of the base on the same text and chunks, their ratio, the mean KL divergence of the "
                 "quantized model's next-token distribution from the base's (lower is better, 0 is identical), "
                 "its 99th percentile, how often both pick the same top token, and the RMS change of the "
                 "probability of the actual next token. ± is one standard error.</p>\n");
    qp_sb_put(b, "<table>\n<tr><th class=\"l\">model</th><th class=\"l\">base</th><th>chunks × ctx</th>"
                 "<th>tokens</th><th>PPL</th><th>base PPL</th><th>PPL ratio</th><th>mean KLD</th>"
                 "<th>KLD p99</th><th>same top-1 (%)</th><th>RMS &#916;p (%)</th></tr>\n");
    for (int i = 0; i < r->n_ppl; i++) {
        const qp_report_ppl *p = &r->ppl[i];
        qp_sb_put(b, "<tr>");
        char mb[512], bb[512];
        td_text(b, base_name(p->model[0] ? p->model : p->path, mb, sizeof mb));
        td_text(b, p->base[0] ? base_name(p->base, bb, sizeof bb) : "(none)");
        qp_sb_printf(b, "<td>%lld × %lld</td><td>%lld</td>", (long long)p->chunks, (long long)p->n_ctx,
                     (long long)p->tokens);
        est_cell(b, "%.4f", p->ppl, 1);
        est_cell(b, "%.4f", p->ppl_base, 1);
        est_cell(b, "%.4f", p->ppl_ratio, 1);
        est_cell(b, "%.5f", p->kld, 1);
        td_num(b, "%.4f", p->kld_p99);
        est_cell(b, "%.2f", p->same_top1, 100);
        est_cell(b, "%.2f", p->dp_rms, 100);
        qp_sb_put(b, "</tr>\n");
    }
    qp_sb_put(b, "</table>\n</section>\n");
}

static void section_size(qp_sb *b, const qp_report_data *r)
{
    qp_sb_put(b, "<section id=\"size\"><h2>Size by tensor kind</h2>\n");
    if (!r->n_t) {
        missing_input(b, "Needs the quantized file: --model OUT.gguf.");
        qp_sb_put(b, "</section>\n");
        return;
    }
    qp_sb_put(b, "<p class=\"note\">Bytes of each tensor kind summed over the layers, largest first, with the "
                 "share of the file's tensor data, the bits per weight and the types used (type × number of "
                 "tensors).</p>\n<div class=\"chart\">\n");
    qp_rc_size_by_kind(b, r);
    qp_sb_put(b, "</div>\n</section>\n");
}

char *qp_report_html(const qp_report_data *r, size_t *len)
{
    qp_sb b;
    qp_sb_init(&b);
    qp_sb_put(&b, "<!DOCTYPE html>\n"
                  "<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\" xml:lang=\"en\">\n<head>\n"
                  "<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width\"/>\n<title>");
    const char *name = r->model_name[0] ? r->model_name : r->model_path[0] ? r->model_path : "model";
    qp_sb_put(&b, "qpack report: ");
    esc(&b, name);
    qp_sb_put(&b, "</title>\n<style>\n");
    qp_sb_put(&b, CSS);
    qp_sb_put(&b, "</style>\n</head>\n<body>\n<h1>Quantization report: ");
    esc(&b, name);
    qp_sb_put(&b, "</h1>\n<p class=\"note\">Where the quantization lost precision, how the bits were spent, how "
                  "well calibration covered the experts, and what it costs in perplexity.</p>\n");
    section_summary(&b, r);
    section_error(&b, r);
    section_bpw(&b, r);
    section_routing(&b, r);
    section_ppl(&b, r);
    section_size(&b, r);
    qp_sb_put(&b, "<p class=\"note\">Generated by qpack " QP_VERSION ". Self-contained: no scripts, no external "
                  "files.</p>\n</body>\n</html>\n");
    return qp_sb_take(&b, len);
}

qp_status qp_report_html_write(const qp_report_data *r, FILE *f, const char *path, qp_err *err)
{
    size_t n;
    char *s = qp_report_html(r, &n);
    if (!s)
        return qp_err_set(err, QP_ERR_NOMEM, path, "out of memory building the report");
    size_t w = fwrite(s, 1, n, f);
    free(s);
    if (w != n || fflush(f) != 0)
        return qp_err_io(err, path, errno, "write failed");
    return QP_OK;
}
