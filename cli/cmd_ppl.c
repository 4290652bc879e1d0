/* cmd_ppl.c - `qpack ppl`: perplexity of a model on a text, llama.cpp's
 * protocol, and KL divergence against a base model or a llama.cpp base
 * log-probability file. */
#include "cli/cli.h"
#include "cli/stream_opts.h"
#include "cli/text_tokens.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_threads.h"
#include "runtime-lite/model.h"
#include "runtime-lite/ppl.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qpack ppl MODEL --text FILE [options]\n"
            "       qpack ppl MODEL --base-logits FILE [options]\n\n"
            "Perplexity of MODEL (a .gguf file or a Hugging Face checkpoint directory) on a text,\n"
            "as llama.cpp's perplexity tool computes it: the text is tokenized whole (no BOS) and cut\n"
            "into chunks of CTX tokens; each chunk runs alone and positions CTX/2 .. CTX-2 are scored\n"
            "on the next token.\n\n"
            "options:\n"
            "  --text FILE         text to evaluate: plain text or JSON Lines (with --field),\n"
            "                      optionally gzip/zlib (.gz) or zstd (.zst) compressed\n"
            "  --field NAME        JSON Lines: take the string field NAME of each line\n"
            "  -c, --ctx N         tokens per chunk (default 512)\n"
            "  --chunks N          evaluate at most N chunks\n"
            "  -t, --threads N     worker threads (default: all CPUs)\n"
            "  --base BASE         also run BASE (model or directory) and report KL divergence,\n"
            "                      PPL ratio/difference, top-1 agreement and RMS delta-p\n"
            "  --save-logits FILE  write MODEL's log-probabilities in llama.cpp's\n"
            "                      --kl-divergence-base format\n"
            "  --save-token-kld F  with a base: write each scored token's KLD (raw f32) to F,\n"
            "                      for paired comparisons (tests/bench/paired_kld)\n"
            "  --base-logits FILE  compare with base log-probabilities from such a file\n"
            "                      (its tokens and context size are used; no --text)\n"
            "  --stream            hold one layer's weights at a time (models larger than memory);\n"
            "                      results equal the in-memory run's (docs/perplexity.md)\n"
            "  --spill-limit SIZE  --stream: keep activations in memory up to SIZE (default 4G), else\n"
            "                      spill them zstd-compressed to a temp file; 0 always spills\n"
            "  --tmpdir DIR        --stream: where spill files go (default $TMPDIR or /tmp)\n"
            "  --json              print one JSON object with the results instead of text\n"
            "  -q, --quiet         no progress display\n"
            "  -h, --help          this help\n\n"
            "Output: running perplexity after each chunk ([1]x,[2]y,...), then\n"
            "'PPL = x +/- e' where e is the standard error from the variance of per-token NLL.\n");
}

typedef struct {
    int json;
    int with_base;
    int line_open;
} print_ctx;

static void on_chunk(void *user, const qp_ppl_stats *r)
{
    print_ctx *p = user;
    if (p->json)
        return;
    if (!p->with_base) {
        printf("[%lld]%.4f,", (long long)r->chunk, r->ppl.val);
        p->line_open = 1;
    } else {
        if (r->chunk == 1)
            printf("chunk        PPL            ln(PPL(Q)/PPL(base))      KL divergence            "
                   "RMS dp            same top p\n");
        printf("%5lld  %9.4f ± %7.4f  %10.5f ± %8.5f  %10.5f ± %8.5f  %6.3f ± %5.3f %%  %6.3f ± %5.3f %%\n",
               (long long)r->chunk, r->ppl.val, r->ppl.unc, r->ln_ratio.val, r->ln_ratio.unc, r->kld.val,
               r->kld.unc, 100 * r->p_diff_rms.val, 100 * r->p_diff_rms.unc, 100 * r->same_top.val,
               100 * r->same_top.unc);
    }
    fflush(stdout);
}

static void print_quantiles(const char *what, const qp_ppl_quantiles *q, double scale, const char *unit)
{
    const struct { const char *name; double v; } rows[] = {
        {"Maximum", q->max}, {"99.9%  ", q->p999}, {"99.0%  ", q->p99}, {"95.0%  ", q->p95},
        {"90.0%  ", q->p90}, {"Median ", q->median}, {"10.0%  ", q->p10}, {" 5.0%  ", q->p05},
        {" 1.0%  ", q->p01}, {" 0.1%  ", q->p001}, {"Minimum", q->min},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("%s %s: %10.6f%s\n", rows[i].name, what, rows[i].v * scale, unit);
}

static void print_text(const qp_ppl_summary *s)
{
    const qp_ppl_stats *r = &s->stats;
    if (!r->has_base) {
        printf("PPL = %.4f +/- %.5f\n", r->ppl.val, r->ppl.unc);
        return;
    }
    printf("\n====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", r->ppl.val, r->ppl.unc);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", r->ppl_base.val, r->ppl_base.unc);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * r->cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", r->ln_ratio.val, r->ln_ratio.unc);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", r->ratio.val, r->ratio.unc);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", r->diff.val, r->diff.unc);
    printf("\n====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f ± %10.6f\n", r->kld.val, r->kld.unc);
    print_quantiles("KLD", &s->kld_q, 1, "");
    printf("\n====== Token probability statistics ======\n");
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * r->p_diff.val, 100 * r->p_diff.unc);
    print_quantiles("Δp", &s->p_diff_q, 100, "%");
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * r->p_diff_rms.val, 100 * r->p_diff_rms.unc);
    printf("Same top p: %6.3f ± %5.3f %%\n", 100 * r->same_top.val, 100 * r->same_top.unc);
    printf("PPL = %.4f +/- %.5f\n", r->ppl.val, r->ppl.unc);
}

static cJSON *est(double v, double u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "value", v);
    cJSON_AddNumberToObject(o, "stderr", u);
    return o;
}

static cJSON *quantiles_json(const qp_ppl_quantiles *q)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "max", q->max);
    cJSON_AddNumberToObject(o, "p99_9", q->p999);
    cJSON_AddNumberToObject(o, "p99", q->p99);
    cJSON_AddNumberToObject(o, "p95", q->p95);
    cJSON_AddNumberToObject(o, "p90", q->p90);
    cJSON_AddNumberToObject(o, "median", q->median);
    cJSON_AddNumberToObject(o, "p10", q->p10);
    cJSON_AddNumberToObject(o, "p5", q->p05);
    cJSON_AddNumberToObject(o, "p1", q->p01);
    cJSON_AddNumberToObject(o, "p0_1", q->p001);
    cJSON_AddNumberToObject(o, "min", q->min);
    return o;
}

static int print_json(const qp_ppl_summary *s, const char *model, const char *base, const double *running,
                      int64_t n_running, const cli_stream *cs)
{
    const qp_ppl_stats *r = &s->stats;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return 0;
    cJSON_AddStringToObject(o, "model", model);
    if (base)
        cJSON_AddStringToObject(o, "base", base);
    cJSON_AddNumberToObject(o, "n_ctx", (double)s->n_ctx);
    cJSON_AddNumberToObject(o, "chunks", (double)r->n_chunks);
    cJSON_AddNumberToObject(o, "tokens_scored", (double)r->n_scored);
    cJSON_AddNumberToObject(o, "ppl", r->ppl.val);
    cJSON_AddNumberToObject(o, "ppl_stderr", r->ppl.unc);
    cJSON *arr = cJSON_CreateDoubleArray(running, (int)n_running);
    cJSON_AddItemToObject(o, "running_ppl_per_chunk", arr);
    cJSON_AddNumberToObject(o, "seconds", s->seconds);
    cJSON_AddNumberToObject(o, "tokens_per_second", s->tokens_per_second);
    if (r->has_base) {
        cJSON_AddItemToObject(o, "ppl_base", est(r->ppl_base.val, r->ppl_base.unc));
        cJSON_AddNumberToObject(o, "cor_ln_ppl", r->cor);
        cJSON_AddItemToObject(o, "ln_ppl_ratio", est(r->ln_ratio.val, r->ln_ratio.unc));
        cJSON_AddItemToObject(o, "ppl_ratio", est(r->ratio.val, r->ratio.unc));
        cJSON_AddItemToObject(o, "ppl_diff", est(r->diff.val, r->diff.unc));
        cJSON_AddItemToObject(o, "kld_mean", est(r->kld.val, r->kld.unc));
        cJSON_AddItemToObject(o, "kld", quantiles_json(&s->kld_q));
        cJSON_AddItemToObject(o, "dp_mean", est(r->p_diff.val, r->p_diff.unc));
        cJSON_AddItemToObject(o, "dp", quantiles_json(&s->p_diff_q));
        cJSON_AddItemToObject(o, "dp_rms", est(r->p_diff_rms.val, r->p_diff_rms.unc));
        cJSON_AddItemToObject(o, "same_top1", est(r->same_top.val, r->same_top.unc));
    }
    cli_stream_json(cs, o);
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt)
        return 0;
    printf("%s\n", txt);
    free(txt);
    return 1;
}

/* Running perplexities for --json, collected by a second callback layer. */
typedef struct {
    print_ctx p;
    double *running;
    int64_t n, cap;
} collect_ctx;

static void on_chunk_collect(void *user, const qp_ppl_stats *r)
{
    collect_ctx *c = user;
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 256;
        double *n = realloc(c->running, (size_t)cap * sizeof *n);
        if (!n)
            return; /* the list is informational; the totals stay right */
        c->running = n;
        c->cap = cap;
    }
    c->running[c->n++] = r->ppl.val;
    on_chunk(&c->p, r);
}

int cmd_ppl(int argc, char **argv)
{
    const char *cmd = "ppl";
    const char *model_path = NULL, *text_path = NULL, *field = NULL, *base_path = NULL;
    const char *save_logits = NULL, *base_logits = NULL;
    const char *save_token_kld = NULL; /* --save-token-kld */
    long long n_ctx = 512, max_chunks = 0, n_threads = qp_cpu_count();
    int json = 0, quiet = 0, ctx_given = 0, sr;
    cli_stream cs;
    cli_stream_init(&cs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
#define VALUE(name) (has_val ? argv[++i] : (cli_usage_error(cmd, "%s needs a value", name), (char *)NULL))
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--text") == 0 || strcmp(a, "-f") == 0) {
            if (!(text_path = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "--field") == 0) {
            if (!(field = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--ctx") == 0) {
            const char *v = VALUE(a);
            if (!v)
                return CLI_EXIT_BAD_INPUT;
            if (!cli_parse_int(v, 4, 1 << 20, &n_ctx))
                return cli_usage_error(cmd, "%s wants an integer from 4 to %d, not '%s'", a, 1 << 20, v);
            ctx_given = 1;
        } else if (strcmp(a, "--chunks") == 0) {
            const char *v = VALUE(a);
            if (!v)
                return CLI_EXIT_BAD_INPUT;
            if (!cli_parse_int(v, 1, 1LL << 40, &max_chunks))
                return cli_usage_error(cmd, "--chunks wants a positive integer, not '%s'", v);
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            const char *v = VALUE(a);
            if (!v)
                return CLI_EXIT_BAD_INPUT;
            if (!cli_parse_int(v, 1, 1024, &n_threads))
                return cli_usage_error(cmd, "%s wants an integer from 1 to 1024, not '%s'", a, v);
        } else if (strcmp(a, "--base") == 0) {
            if (!(base_path = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "--save-logits") == 0) {
            if (!(save_logits = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "--save-token-kld") == 0) {
            if (!(save_token_kld = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "--base-logits") == 0) {
            if (!(base_logits = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if ((sr = cli_stream_arg(&cs, cmd, argc, argv, &i)) != 0) {
            if (sr < 0)
                return CLI_EXIT_BAD_INPUT;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", a);
        }
#undef VALUE
    }
    if (!model_path)
        return cli_usage_error(cmd, "missing MODEL");
    if (base_logits && (text_path || base_path))
        return cli_usage_error(cmd, "--base-logits takes its tokens from the file: no --text or --base");
    if (base_logits && ctx_given)
        return cli_usage_error(cmd, "--base-logits uses the file's context size: no -c");
    if (base_logits && save_logits)
        return cli_usage_error(cmd, "--save-logits and --base-logits cannot be combined");
    if (save_token_kld && !base_logits && !base_path)
        return cli_usage_error(cmd, "--save-token-kld needs --base or --base-logits");
    if (!base_logits && !text_path)
        return cli_usage_error(cmd, "missing --text FILE");
    if (field && !text_path)
        return cli_usage_error(cmd, "--field needs --text");
    if (cli_stream_check(&cs, cmd) != CLI_EXIT_OK)
        return CLI_EXIT_BAD_INPUT;

    qp_err err;
    qp_err_clear(&err);
    qp_rt_model *model = NULL, *base = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    collect_ctx cc = {{json, base_path || base_logits, 0}, NULL, 0, 0};
    cli_progress *prog = NULL;
    int rc = CLI_EXIT_OK;
    qp_status st;

    if ((st = cli_stream_open_model(&cs, model_path, (int)n_threads, &model, &err)) != QP_OK ||
        (base_path && (st = cli_stream_open_model(&cs, base_path, (int)n_threads, &base, &err)) != QP_OK))
        goto fail;
    if (text_path) {
        size_t len = 0;
        if ((st = cli_text_tokens(model, text_path, field, &ids, &n_ids, &len, &err)) != QP_OK)
            goto fail;
        if (!quiet)
            fprintf(stderr, "qpack ppl: %s: %zu bytes, %zu tokens\n", text_path, len, n_ids);
    }
    /* The running-perplexity line is the progress in text mode; streaming
     * shows its layers first. */
    prog = cs.on ? cli_progress_new("stream", "tok", quiet) : cli_progress_new("ppl", "tok", quiet || !json);
    if (cs.on)
        cli_install_signal_handlers(); /* an interrupt stops between chunks and removes the temp files */
    qp_ppl_job job = {
        .model = model,
        .base = base,
        .tokens = ids,
        .n_tokens = (int64_t)n_ids,
        .n_ctx = n_ctx,
        .max_chunks = max_chunks,
        .n_threads = (int)n_threads,
        .save_logits = save_logits,
        .base_logits = base_logits,
        .save_token_kld = save_token_kld,
        .progress = cli_progress_hook(prog),
        .on_chunk = on_chunk_collect,
        .user = &cc,
        .stream = cli_stream_opts(&cs),
        .stream_stats = &cs.stats,
    };
    qp_ppl_summary sum;
    st = qp_ppl_run(&job, &sum, &err);
    if (cc.p.line_open)
        printf("\n");
    cli_progress_free(prog);
    prog = NULL;
    if (st != QP_OK) {
        if (st == QP_ERR_BAD_INPUT && text_path)
            qp_err_set_path(&err, text_path); /* "the text has N tokens ..." */
        goto fail;
    }
    if (json) {
        if (!print_json(&sum, model_path, base_path ? base_path : base_logits, cc.running, cc.n, &cs)) {
            qp_err_set(&err, QP_ERR_NOMEM, NULL, "out of memory printing JSON");
            goto fail;
        }
    } else {
        print_text(&sum);
    }
    if (!quiet)
        fprintf(stderr, "qpack ppl: %lld chunks, %lld tokens scored, %.1f tokens/s (%lld threads)\n",
                (long long)sum.stats.n_chunks, (long long)sum.stats.n_scored, sum.tokens_per_second, n_threads);
    if (!quiet)
        cli_stream_report(&cs, cmd);
    goto done;
fail:
    fflush(stdout);
    rc = cli_fail(&err);
done:
    cli_progress_free(prog);
    free(cc.running);
    free(ids);
    qp_rt_model_free(base);
    qp_rt_model_free(model);
    return rc;
}
