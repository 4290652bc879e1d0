/* cmd_calibrate.c - `qpack calibrate`: an importance matrix (llama.cpp's
 * GGUF imatrix format) from a calibration text, with every expert of an MoE
 * model covered (see runtime-lite/calibrate.h and docs/calibration.md). */
#include "cli/cli.h"
#include "cli/stream_opts.h"
#include "cli/text_tokens.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/calib_sens.h"
#include "common/qp_threads.h"
#include "runtime-lite/calibrate.h"
#include "runtime-lite/covariance.h"
#include "runtime-lite/model.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qpack calibrate MODEL --text FILE -o IMATRIX.gguf [options]\n\n"
            "Compute an importance matrix for MODEL (a .gguf file or a Hugging Face checkpoint\n"
            "directory) on a calibration text, in llama.cpp's GGUF imatrix format (usable with\n"
            "`qpack convert --imatrix` and llama-quantize). The text is tokenized whole (no BOS)\n"
            "and cut into non-overlapping chunks of CTX tokens; every position counts.\n"
            "For MoE models each expert gets the statistics of the tokens routed to it; experts\n"
            "routed fewer than --min-expert-tokens tokens are then completed from every token\n"
            "weighted by its router probability (coverage pass), so no expert is left without data.\n\n"
            "options:\n"
            "  --text FILE              calibration text: plain text or JSON Lines (with --field),\n"
            "                           optionally gzip/zlib (.gz) or zstd (.zst) compressed\n"
            "  --field NAME             JSON Lines: take the string field NAME of each line\n"
            "  -o, --output FILE        where to write the matrix (required)\n"
            "  -c, --ctx N              tokens per chunk (default 512)\n"
            "  --chunks N               use at most N chunks\n"
            "  -t, --threads N          worker threads (default: all CPUs)\n"
            "  --min-expert-tokens N    coverage threshold per expert (default 256; 0 disables)\n"
            "  --covariance FILE        also write the inputs' second moments (x x^T per matrix and\n"
            "                           expert, same tokens and coverage) for convert --covariance\n"
            "  --sensitivity            also measure each matrix's KLD sensitivity on the first\n"
            "                           --sens-chunks chunks and store it as qpack.sens.* keys\n"
            "                           (needed by convert --target-bpw / --target-size)\n"
            "  --sens-chunks N          chunks per matrix for --sensitivity (default 8)\n"
            "  --stream                 hold one layer's weights at a time (models larger than\n"
            "                           memory); the matrix equals the in-memory one\n"
            "  --spill-limit SIZE       --stream: keep activations in memory up to SIZE (default 4G),\n"
            "                           else spill them zstd-compressed to a temp file; 0 always spills\n"
            "  --tmpdir DIR             --stream: where spill files go (default $TMPDIR or /tmp)\n"
            "  --json                   print one JSON summary instead of the coverage table\n"
            "  -q, --quiet              no progress display\n"
            "  -h, --help               this help\n\n"
            "Output: a table of routed tokens per layer and expert; '*' marks experts under the\n"
            "threshold whose statistics were completed by the coverage pass.\n");
}

/* Progress: one display per pass ("routed", then "coverage"). */
typedef struct {
    cli_progress *cur;
    char what[32];
    int quiet;
} prog_ctx;

static void prog_cb(void *user, uint64_t done, uint64_t total, const char *what)
{
    prog_ctx *p = user;
    if (!what)
        what = "";
    /* "stream layer 3/48": the display "stream", with "layer 3/48" shown */
    const char *detail = strchr(what, ' ');
    const int n = detail ? (int)(detail - what) : (int)strlen(what);
    if (!p->cur || (int)strlen(p->what) != n || strncmp(p->what, what, (size_t)n) != 0) {
        cli_progress_free(p->cur);
        snprintf(p->what, sizeof p->what, "%.*s", n, what);
        p->cur = cli_progress_new(p->what, "tok", p->quiet);
    }
    qp_progress h = cli_progress_hook(p->cur);
    if (h.fn)
        h.fn(h.user, done, total, detail ? detail + 1 : NULL);
}

static void print_table(const qp_calib_result *r)
{
    if (r->n_expert <= 0) {
        printf("dense model: every matrix saw all %lld tokens\n", (long long)(r->n_chunks * r->n_ctx));
        return;
    }
    printf("routed tokens per expert (top-%lld of %lld)", (long long)r->n_expert_used, (long long)r->n_expert);
    if (r->min_expert_tokens > 0)
        printf("; * = under %lld, completed by the coverage pass", (long long)r->min_expert_tokens);
    printf("\n");
    const int64_t per_line = 16;
    for (int64_t e0 = 0; e0 < r->n_expert; e0 += per_line) {
        const int64_t e1 = e0 + per_line < r->n_expert ? e0 + per_line : r->n_expert;
        printf("layer ");
        for (int64_t e = e0; e < e1; e++)
            printf(" %7lld", (long long)e);
        printf("\n");
        for (int64_t l = 0; l < r->n_layer; l++) {
            printf("%5lld ", (long long)l);
            for (int64_t e = e0; e < e1; e++) {
                const int64_t i = l * r->n_expert + e;
                printf(" %6lld%c", (long long)r->routed[i], r->forced[i] ? '*' : ' ');
            }
            printf("\n");
        }
    }
    printf("%lld of %lld experts completed by the coverage pass", (long long)r->n_forced,
           (long long)(r->n_layer * r->n_expert));
    if (r->n_forced > 0)
        printf(" (%lld chunks)", (long long)r->coverage_chunks);
    printf("\n");
}

static int print_json(const qp_calib_result *r, const char *model, const char *text, const char *out,
                      const cli_stream *cs)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return 0;
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddStringToObject(o, "output", out);
    cJSON_AddNumberToObject(o, "n_ctx", (double)r->n_ctx);
    cJSON_AddNumberToObject(o, "chunks", (double)r->n_chunks);
    cJSON_AddNumberToObject(o, "tokens", (double)(r->n_chunks * r->n_ctx));
    cJSON_AddNumberToObject(o, "entries", (double)qp_imatrix_count(r->imatrix));
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    cJSON_AddNumberToObject(o, "tokens_per_second", r->tokens_per_second);
    cJSON_AddNumberToObject(o, "n_layer", (double)r->n_layer);
    cJSON_AddNumberToObject(o, "n_expert", (double)r->n_expert);
    if (r->n_expert > 0) {
        cJSON_AddNumberToObject(o, "min_expert_tokens", (double)r->min_expert_tokens);
        cJSON_AddNumberToObject(o, "forced_experts", (double)r->n_forced);
        cJSON_AddNumberToObject(o, "coverage_chunks", (double)r->coverage_chunks);
        cJSON *routed = cJSON_AddArrayToObject(o, "routed_counts");
        cJSON *forced = cJSON_AddArrayToObject(o, "forced");
        cJSON *counts = cJSON_AddArrayToObject(o, "counts");
        for (int64_t l = 0; l < r->n_layer; l++) {
            cJSON *a = cJSON_CreateArray(), *b = cJSON_CreateArray(), *c = cJSON_CreateArray();
            for (int64_t e = 0; e < r->n_expert; e++) {
                const int64_t i = l * r->n_expert + e;
                cJSON_AddItemToArray(a, cJSON_CreateNumber((double)r->routed[i]));
                cJSON_AddItemToArray(b, cJSON_CreateBool(r->forced[i]));
                cJSON_AddItemToArray(c, cJSON_CreateNumber(r->counts[i]));
            }
            cJSON_AddItemToArray(routed, a);
            cJSON_AddItemToArray(forced, b);
            cJSON_AddItemToArray(counts, c);
        }
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

int cmd_calibrate(int argc, char **argv)
{
    const char *cmd = "calibrate";
    const char *model_path = NULL, *text_path = NULL, *field = NULL, *out_path = NULL;
    const char *cov_path = NULL; /* --covariance */
    long long n_ctx = 512, max_chunks = 0, n_threads = qp_cpu_count(), min_tokens = 256;
    int json = 0, quiet = 0, sensitivity = 0;
    long long sens_chunks = 8;
    cli_stream cs;
    cli_stream_init(&cs);
    int sr;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
#define VALUE(name) (has_val ? argv[++i] : (cli_usage_error(cmd, "%s needs a value", name), (char *)NULL))
#define INT_VALUE(name, lo, hi, dst)                                                                       \
    do {                                                                                                   \
        const char *v_ = VALUE(name);                                                                      \
        if (!v_)                                                                                           \
            return CLI_EXIT_BAD_INPUT;                                                                     \
        if (!cli_parse_int(v_, lo, hi, dst))                                                               \
            return cli_usage_error(cmd, "%s wants an integer from %lld to %lld, not '%s'", name,           \
                                   (long long)(lo), (long long)(hi), v_);                                  \
    } while (0)
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--text") == 0 || strcmp(a, "-f") == 0) {
            if (!(text_path = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "--field") == 0) {
            if (!(field = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!(out_path = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--ctx") == 0) {
            INT_VALUE(a, 4, 1 << 20, &n_ctx);
        } else if (strcmp(a, "--chunks") == 0) {
            INT_VALUE(a, 1, 1LL << 40, &max_chunks);
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            INT_VALUE(a, 1, 1024, &n_threads);
        } else if (strcmp(a, "--min-expert-tokens") == 0) {
            INT_VALUE(a, 0, 1LL << 31, &min_tokens);
        } else if (strcmp(a, "--covariance") == 0) {
            if (!(cov_path = VALUE(a)))
                return CLI_EXIT_BAD_INPUT;
        } else if (strcmp(a, "--sensitivity") == 0) {
            sensitivity = 1;
        } else if (strcmp(a, "--sens-chunks") == 0) {
            INT_VALUE(a, 1, 1 << 20, &sens_chunks);
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
#undef INT_VALUE
#undef VALUE
    }
    if (!model_path)
        return cli_usage_error(cmd, "missing MODEL");
    if (!text_path)
        return cli_usage_error(cmd, "missing --text FILE");
    if (!out_path)
        return cli_usage_error(cmd, "missing -o FILE");
    if (cli_stream_check(&cs, cmd) != CLI_EXIT_OK)
        return CLI_EXIT_BAD_INPUT;
    if (cs.on && (sensitivity || cov_path))
        return cli_usage_error(cmd, "%s runs the whole model in memory: not with --stream",
                               sensitivity ? "--sensitivity" : "--covariance");

    qp_err err;
    qp_err_clear(&err);
    qp_rt_model *model = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0, len = 0;
    qp_calib_result res;
    memset(&res, 0, sizeof res);
    prog_ctx pc = {NULL, "", quiet};
    int rc = CLI_EXIT_OK;
    qp_status st;

    if ((st = cli_stream_open_model(&cs, model_path, (int)n_threads, &model, &err)) != QP_OK ||
        (st = cli_text_tokens(model, text_path, field, &ids, &n_ids, &len, &err)) != QP_OK)
        goto fail;
    if (!quiet)
        fprintf(stderr, "qpack calibrate: %s: %zu bytes, %zu tokens, %zu chunks of %lld\n", text_path, len, n_ids,
                n_ids / (size_t)n_ctx, n_ctx);
    cli_install_signal_handlers();
    qp_calib_job job = {
        .model = model,
        .tokens = ids,
        .n_tokens = (int64_t)n_ids,
        .n_ctx = n_ctx,
        .max_chunks = max_chunks,
        .n_threads = (int)n_threads,
        .min_expert_tokens = min_tokens,
        .dataset = text_path,
        .progress = {prog_cb, &pc, cli_cancel_flag()},
        .stream = cli_stream_opts(&cs),
        .stream_stats = &cs.stats,
    };
    st = qp_calib_run(&job, &res, &err);
    cli_progress_free(pc.cur);
    pc.cur = NULL;
    if (st != QP_OK) {
        if (st == QP_ERR_BAD_INPUT)
            qp_err_set_path(&err, text_path);
        goto fail;
    }
    if ((st = qp_calib_write(&res, out_path, &err)) != QP_OK)
        goto fail;
    if (cov_path) { /* a second run over the same chunks (runtime-lite/covariance.h) */
        qp_covmat *cov = NULL;
        st = qp_cov_collect(&job, &res, &cov, &err);
        cli_progress_free(pc.cur);
        pc.cur = NULL;
        if (st == QP_OK)
            st = qp_covmat_write(cov, cov_path, &err);
        qp_covmat_free(cov);
        if (st != QP_OK)
            goto fail;
    }
    if (sensitivity) {
        const cli_sens_args sa = {model_path, model, &res, out_path, ids, (int64_t)n_ids, n_ctx, sens_chunks,
                                  (int)n_threads, quiet};
        if ((rc = cli_calib_sensitivity(&sa, json)) != CLI_EXIT_OK)
            goto done;
    }
    if (json) {
        if (!print_json(&res, model_path, text_path, out_path, &cs)) {
            qp_err_set(&err, QP_ERR_NOMEM, NULL, "out of memory printing JSON");
            goto fail;
        }
    } else {
        print_table(&res);
    }
    if (!quiet)
        fprintf(stderr, "qpack calibrate: %lld chunks, %lld entries, %.1f tokens/s, %.1f s -> %s\n",
                (long long)res.n_chunks, (long long)qp_imatrix_count(res.imatrix), res.tokens_per_second,
                res.seconds, out_path);
    if (!quiet)
        cli_stream_report(&cs, cmd);
    goto done;
fail:
    fflush(stdout);
    rc = cli_fail(&err);
done:
    cli_progress_free(pc.cur);
    qp_calib_result_free(&res);
    free(ids);
    qp_rt_model_free(model);
    return rc;
}
