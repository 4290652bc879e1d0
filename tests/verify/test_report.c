/* test_report.c - the HTML report: well-formed as XML (xmllint) as a whole
 * and in every inline <svg>, self-contained (no scripts, no external
 * references), hostile names escaped, every section present or saying
 * which input it needs; expert routing classes from an importance matrix;
 * ppl JSON parsed; and the `qpack report` command end to end. */
/* ctest-labels: fast */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/imatrix.h"
#include "support/qp_test.h"
#include "verify/report_data.h"
#include "verify/report_html.h"

static char *g_root;

static int setup(void **state)
{
    (void)state;
    g_root = qp_test_tmpdir("verify-report");
    return g_root ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_root);
    free(g_root);
    return 0;
}

static int have_xmllint(void)
{
    qp_run_result r = qp_run_shell("command -v xmllint");
    int ok = r.exit_code == 0;
    qp_run_free(&r);
    return ok;
}

static void xmllint_ok(const char *path)
{
    qp_run_result r = qp_run_shell("xmllint --noout '%s'", path);
    if (r.exit_code != 0)
        print_error("xmllint %s:\n%s\n", path, r.err);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
}

static int count_of(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The document and each of its SVGs pass xmllint; returns the SVG count. */
static int check_well_formed(const char *html, const char *tag)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.html", g_root, tag);
    assert_int_equal(qp_test_write_file(path, html, strlen(html)), 0);
    xmllint_ok(path);
    int n = 0;
    for (const char *p = strstr(html, "<svg"); p; p = strstr(p + 1, "<svg")) {
        const char *e = strstr(p, "</svg>");
        assert_non_null(e);
        e += 6;
        snprintf(path, sizeof path, "%s/%s-%d.svg", g_root, tag, n++);
        assert_int_equal(qp_test_write_file(path, p, (size_t)(e - p)), 0);
        xmllint_ok(path);
    }
    return n;
}

/* Opens offline: no scripts, no external resources; the only URLs are the
 * XHTML and SVG namespace names. */
static void check_self_contained(const char *html)
{
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<link"));
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "@import"));
    assert_null(strstr(html, " src="));
    assert_null(strstr(html, "href="));
    int urls = count_of(html, "http://") + count_of(html, "https://");
    int ns = count_of(html, "xmlns=\"http://www.w3.org/1999/xhtml\"") +
             count_of(html, "xmlns=\"http://www.w3.org/2000/svg\"");
    assert_int_equal(urls, ns);
    /* url(...) only refers to patterns and gradients inside the page. */
    assert_int_equal(count_of(html, "url("), count_of(html, "url(#"));
}

static void add_tensor(qp_report_data *r, const char *name, uint32_t type, int64_t elems, double rel, double wrel)
{
    qp_report_tensor *t = realloc(r->t, (size_t)(r->n_t + 1) * sizeof *t);
    assert_non_null(t);
    r->t = t;
    qp_report_tensor *x = &t[r->n_t++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", name);
    if (sscanf(name, "blk.%d.", &x->layer) != 1)
        x->layer = -1;
    const char *k = x->layer >= 0 ? strchr(name + 4, '.') + 1 : name;
    snprintf(x->kind, sizeof x->kind, "%.*s", (int)(strstr(k, ".weight") ? strstr(k, ".weight") - k : (long)strlen(k)),
             k);
    x->type = type;
    x->n_elements = elems;
    const qp_ggml_type_info *ti = qp_ggml_type_get(type);
    x->bytes = (uint64_t)elems / ti->block_elems * ti->block_bytes;
    x->status = "ok";
    x->has_err = !isnan(rel);
    x->err.rel_rmse = rel;
    x->err.cosine = 1 - rel * rel / 2;
    x->err.snr_db = rel > 0 ? -20 * log10(rel) : INFINITY;
    x->err.max_abs_err = rel / 10;
    x->err.has_weighted = !isnan(wrel);
    x->err.weighted_rel_rmse = wrel;
    if (x->layer + 1 > r->n_layers)
        r->n_layers = x->layer + 1;
}

/* A small importance matrix: 2 layers x 4 experts; layer 0 counts
 * 200, 3, 0, 197 (mean 100: expert 1 under 5%, expert 2 never routed). */
static qp_imatrix *routing_matrix(void)
{
    qp_imatrix *m = qp_imatrix_new();
    assert_non_null(m);
    qp_err err;
    const double counts[2][4] = {{200, 3, 0, 197}, {100, 100, 100, 100}};
    float *x = calloc(200 * 8, sizeof *x);
    assert_non_null(x);
    for (int i = 0; i < 200 * 8; i++)
        x[i] = 0.5f;
    for (int l = 0; l < 2; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.ffn_gate_exps.weight", l);
        int64_t e = qp_imatrix_add(m, name, 8, 4, &err);
        assert_true(e >= 0);
        for (int k = 0; k < 4; k++)
            if (counts[l][k] > 0)
                assert_int_equal(qp_imatrix_accumulate(m, e, k, x, (int64_t)counts[l][k], &err), QP_OK);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l); /* a dense entry: not routing */
        assert_true(qp_imatrix_add(m, name, 8, 1, &err) >= 0);
    }
    free(x);
    return m;
}

static const char PPL_JSON[] =
    "{\"model\": \"m<1>.gguf\", \"base\": \"base-dir\", \"n_ctx\": 512, \"chunks\": 2, \"tokens_scored\": 510,"
    " \"ppl\": 44.1633, \"ppl_stderr\": 6.62, \"running_ppl_per_chunk\": [24.8, 44.1],"
    " \"ppl_base\": {\"value\": 44.1769, \"stderr\": 6.61}, \"ppl_ratio\": {\"value\": 0.99969, \"stderr\": 0.002},"
    " \"ppl_diff\": {\"value\": -0.0135, \"stderr\": 0.088}, \"kld_mean\": {\"value\": 0.000755, \"stderr\": 2.8e-05},"
    " \"kld\": {\"max\": 0.0069, \"p99\": 0.00303, \"median\": 0.00064},"
    " \"dp_rms\": {\"value\": 0.0061, \"stderr\": 0.0003}, \"same_top1\": {\"value\": 0.98431, \"stderr\": 0.0055}}";

static void test_routing_classes(void **state)
{
    (void)state;
    qp_imatrix *m = routing_matrix();
    qp_report_data r;
    qp_report_init(&r);
    qp_err err;
    assert_int_equal(qp_report_set_imatrix(&r, m, "calib.imatrix", &err), QP_OK);
    assert_true(r.has_routing);
    assert_int_equal(r.route_layers, 2);
    assert_int_equal(r.route_experts, 4);
    assert_string_equal(r.route_entry, "ffn_gate_exps");
    assert_true(r.route_counts[1] == 3);
    assert_int_equal(qp_report_route_class(&r, 0, 0), 0);
    assert_int_equal(qp_report_route_class(&r, 0, 1), 1);
    assert_int_equal(qp_report_route_class(&r, 0, 2), 2);
    assert_int_equal(qp_report_route_class(&r, 0, 3), 0);
    assert_int_equal(qp_report_route_class(&r, 1, 1), 0);
    r.under_share = 0.01; /* 3 >= 1% of 100 */
    assert_int_equal(qp_report_route_class(&r, 0, 1), 0);
    qp_report_free(&r);
    qp_imatrix_free(m);
}

static void test_ppl_json(void **state)
{
    (void)state;
    qp_report_data r;
    qp_report_init(&r);
    qp_err err;
    assert_int_equal(qp_report_add_ppl_text(&r, PPL_JSON, strlen(PPL_JSON), "p.json", &err), QP_OK);
    assert_int_equal(r.n_ppl, 1);
    assert_string_equal(r.ppl[0].base, "base-dir");
    assert_true(r.ppl[0].ppl.value == 44.1633);
    assert_true(r.ppl[0].ppl_base.stderr_ == 6.61);
    assert_true(r.ppl[0].kld.value == 0.000755);
    assert_true(r.ppl[0].kld_p99 == 0.00303);
    assert_true(r.ppl[0].same_top1.value == 0.98431);
    assert_int_equal(r.ppl[0].tokens, 510);
    /* Without a base only the perplexity is there. */
    const char *plain = "{\"model\": \"x\", \"ppl\": 9.5, \"ppl_stderr\": 0.1, \"chunks\": 3}";
    assert_int_equal(qp_report_add_ppl_text(&r, plain, strlen(plain), "q.json", &err), QP_OK);
    assert_true(isnan(r.ppl[1].kld.value));
    /* Not a ppl result, not JSON. */
    assert_int_equal(qp_report_add_ppl_text(&r, "{\"a\": 1}", 8, "bad.json", &err), QP_ERR_BAD_INPUT);
    assert_non_null(strstr(err.msg, "ppl"));
    assert_int_equal(qp_report_add_ppl_text(&r, "{\"ppl\": ", 8, "cut.json", &err), QP_ERR_BAD_INPUT);
    assert_string_equal(err.path, "cut.json");
    assert_int_equal(r.n_ppl, 2);
    qp_report_free(&r);
}

static void test_full_report_well_formed(void **state)
{
    (void)state;
    if (!have_xmllint()) {
        fprintf(stderr, "xmllint not found (package libxml2-utils): skipping the well-formedness checks\n");
        skip();
    }
    qp_report_data r;
    qp_report_init(&r);
    /* Names a browser would take for markup, and bytes that are not UTF-8. */
    snprintf(r.model_path, sizeof r.model_path, "/tmp/<b>&\"quoted\"'\xff.gguf");
    snprintf(r.model_name, sizeof r.model_name, "Tiny <MoE> & co");
    snprintf(r.arch, sizeof r.arch, "qwen3moe");
    r.has_model = 1;
    r.n_files = 1;
    r.file_bytes = 12345678;
    r.has_errors = 1;
    r.has_weighted = 1;
    snprintf(r.source_path, sizeof r.source_path, "src-dir");
    const char *kinds[] = {"attn_q", "attn_k", "ffn_down_exps"};
    for (int l = 0; l < 3; l++)
        for (int k = 0; k < 3; k++) {
            char name[96];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, kinds[k]);
            add_tensor(&r, name, k == 2 && l == 1 ? QP_GGML_Q6_K : QP_GGML_Q4_K, 65536 * (k + 1),
                       k == 2 && l == 1 ? 0.017 : 0.07 + 0.001 * k, k == 0 ? NAN : 0.068);
        }
    add_tensor(&r, "blk.0.attn_norm.weight", QP_GGML_F32, 256, 0.0, NAN);
    add_tensor(&r, "token_embd.weight", QP_GGML_Q6_K, 2097152, 0.0166, NAN);
    add_tensor(&r, "blk.2.weird<kind>.weight", QP_GGML_Q8_0, 4096, INFINITY, NAN);
    r.total_err.rel_rmse = 0.06;
    r.total_err.cosine = 0.998;
    r.total_err.snr_db = 24.4;
    qp_imatrix *m = routing_matrix();
    qp_err err;
    assert_int_equal(qp_report_set_imatrix(&r, m, "calib&.imatrix", &err), QP_OK);
    qp_imatrix_free(m);
    assert_int_equal(qp_report_add_ppl_text(&r, PPL_JSON, strlen(PPL_JSON), "ppl.json", &err), QP_OK);
    size_t len;
    char *html = qp_report_html(&r, &len);
    assert_non_null(html);
    assert_int_equal(strlen(html), len);
    /* error, weighted error, bits per weight, routing, size */
    assert_int_equal(check_well_formed(html, "full"), 5);
    check_self_contained(html);
    assert_non_null(strstr(html, "/tmp/&lt;b&gt;&amp;&quot;quoted&quot;&#39;?.gguf"));
    assert_non_null(strstr(html, "Tiny &lt;MoE&gt; &amp; co"));
    assert_null(strstr(html, "<MoE>"));
    assert_non_null(strstr(html, "weird&lt;kind&gt;"));
    /* Every section, each with its content. */
    const char *ids[] = {"summary", "error", "bpw", "routing", "ppl", "size"};
    for (int i = 0; i < 6; i++) {
        char want[64];
        snprintf(want, sizeof want, "<section id=\"%s\">", ids[i]);
        assert_non_null(strstr(html, want));
    }
    assert_null(strstr(html, "class=\"missing\""));
    /* Routing: the never-routed and the under-covered expert of layer 0
     * are named in the table under the chart, and marked in it. */
    assert_non_null(strstr(html, "<tr><td>0</td><td>400</td><td class=\"l\">2</td><td class=\"l\">1 (3)</td></tr>"));
    /* one marked cell each, plus its legend swatch */
    assert_int_equal(count_of(html, "fill=\"url(#route-cross)\""), 2);
    assert_int_equal(count_of(html, "fill=\"url(#route-hatch)\""), 2);
    /* Heatmap cells print their value and type; exact kinds are listed. */
    assert_non_null(strstr(html, ">7.20</text>"));
    assert_non_null(strstr(html, ">Q6_K</text>"));
    assert_non_null(strstr(html, "Stored exactly (zero error, not shown): attn_norm."));
    /* The perplexity table. */
    assert_non_null(strstr(html, "<td>44.1633<br/><small>± 6.6200</small></td>"));
    assert_non_null(strstr(html, "<td>98.43<br/><small>± 0.55</small></td>"));
    /* Axis titles and legends of every chart. */
    assert_non_null(strstr(html, ">tensor kind</text>"));
    assert_non_null(strstr(html, ">bits per weight</text>"));
    assert_non_null(strstr(html, ">expert</text>"));
    assert_non_null(strstr(html, ">never routed (0 tokens)</text>"));
    assert_non_null(strstr(html, ">relative RMSE (%)</text>"));
    assert_non_null(strstr(html, ">whole file</text>"));
    free(html);
    qp_report_free(&r);
}

static void test_empty_sections(void **state)
{
    (void)state;
    if (!have_xmllint())
        skip();
    qp_report_data r;
    qp_report_init(&r);
    qp_err err;
    assert_int_equal(qp_report_add_ppl_text(&r, PPL_JSON, strlen(PPL_JSON), "ppl.json", &err), QP_OK);
    char *html = qp_report_html(&r, NULL);
    assert_non_null(html);
    assert_int_equal(check_well_formed(html, "ppl-only"), 0);
    check_self_contained(html);
    assert_non_null(strstr(html, "Needs the quantized file and its source"));
    assert_non_null(strstr(html, "Needs an importance matrix"));
    assert_non_null(strstr(html, "<td>44.1633<br/><small>± 6.6200</small></td>"));
    free(html);
    /* Writing to a FILE*. */
    char path[4200];
    snprintf(path, sizeof path, "%s/w.html", g_root);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(qp_report_html_write(&r, f, path, &err), QP_OK);
    fclose(f);
    xmllint_ok(path);
    qp_report_free(&r);
}

/* `qpack report` on a real conversion: dense model (no routing section),
 * with source, importance matrix and a ppl result. */
static void test_cli_report(void **state)
{
    (void)state;
    if (!have_xmllint())
        skip();
    char gguf[4200], html[4200], ppl[4200];
    snprintf(gguf, sizeof gguf, "%s/q8.gguf", g_root);
    snprintf(html, sizeof html, "%s/report.html", g_root);
    snprintf(ppl, sizeof ppl, "%s/ppl.json", g_root);
    const char *src = qp_fixture("models/qwen3-tiny");
    qp_run_result r = qp_run_qpack("convert %s -o %s --type Q8_0 -q", src, gguf);
    assert_int_equal(r.exit_code, 0);
    qp_run_free(&r);
    assert_int_equal(qp_test_write_file(ppl, PPL_JSON, strlen(PPL_JSON)), 0);
    r = qp_run_qpack("report -o %s --model %s --source %s --imatrix %s --ppl %s -q", html, gguf, src,
                     qp_fixture("ggml-vectors/imatrix-calib.gguf"), ppl);
    if (r.exit_code)
        print_error("%s\n", r.err);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "wrote "));
    qp_run_free(&r);
    size_t n;
    char *doc = qp_test_read_file(html, &n);
    assert_non_null(doc);
    /* error, weighted error, bits per weight, size; no routing (dense) */
    assert_int_equal(check_well_formed(doc, "cli"), 4);
    check_self_contained(doc);
    assert_non_null(strstr(doc, "no stacked expert tensors"));
    assert_non_null(strstr(doc, ">ffn_down</text>"));
    assert_non_null(strstr(doc, "<section id=\"ppl\">"));
    free(doc);
    /* Usage errors: no output, no inputs, source without model. */
    r = qp_run_qpack("report --model %s", gguf);
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("report -o %s", html);
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    r = qp_run_qpack("report -o %s --source %s", html, src);
    assert_int_equal(r.exit_code, 2);
    qp_run_free(&r);
    /* A bad input leaves no page behind. */
    char bad[4200];
    snprintf(bad, sizeof bad, "%s/bad.html", g_root);
    r = qp_run_qpack("report -o %s --ppl %s", bad, gguf);
    assert_int_equal(r.exit_code, 2);
    assert_int_equal(qp_count_lines(r.err), 1);
    assert_false(qp_test_file_exists(bad));
    qp_run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_classes),
        cmocka_unit_test(test_ppl_json),
        cmocka_unit_test(test_full_report_well_formed),
        cmocka_unit_test(test_empty_sections),
        cmocka_unit_test(test_cli_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
