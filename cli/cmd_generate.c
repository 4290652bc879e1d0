/* cmd_generate.c - `qpack generate`: greedy decoding with the reference
 * runtime and its KV cache, for a quick look at a model. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/qp_threads.h"
#include "runtime-lite/forward.h"
#include "runtime-lite/model.h"
#include "runtime-lite/model_tok.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: qpack generate MODEL -p TEXT [options]\n\n"
            "Greedy (argmax) continuation of TEXT by MODEL (a .gguf file or a Hugging Face\n"
            "checkpoint directory). Prints the prompt and the generated text on stdout; stops\n"
            "after N tokens or at the end-of-text token.\n\n"
            "options:\n"
            "  -p, --prompt TEXT   the prompt (special tokens such as <|im_start|> are recognised)\n"
            "  -n, --n-predict N   tokens to generate (default 64)\n"
            "  -t, --threads N     worker threads (default: all CPUs)\n"
            "  --no-prompt         print only the generated text\n"
            "  -q, --quiet         no statistics on stderr\n"
            "  -h, --help          this help\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int32_t argmax(const float *x, int64_t n)
{
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return (int32_t)best;
}

static void put_piece(const qp_tokenizer *tok, int32_t id)
{
    if (qp_tokenizer_token_type(tok, id) == 3 /* control */)
        return;
    size_t len = 0;
    const char *p = qp_tokenizer_piece(tok, id, &len);
    if (p && len)
        fwrite(p, 1, len, stdout);
    fflush(stdout);
}

int cmd_generate(int argc, char **argv)
{
    const char *cmd = "generate";
    const char *model_path = NULL, *prompt = NULL;
    long long n_predict = 64, n_threads = qp_cpu_count();
    int quiet = 0, echo = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--prompt") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "%s needs a value", a);
            prompt = argv[++i];
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--n-predict") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "%s needs a value", a);
            if (!cli_parse_int(argv[++i], 0, 1 << 20, &n_predict))
                return cli_usage_error(cmd, "%s wants an integer from 0 to %d, not '%s'", a, 1 << 20, argv[i]);
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "%s needs a value", a);
            if (!cli_parse_int(argv[++i], 1, 1024, &n_threads))
                return cli_usage_error(cmd, "%s wants an integer from 1 to 1024, not '%s'", a, argv[i]);
        } else if (strcmp(a, "--no-prompt") == 0) {
            echo = 0;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            return cli_usage_error(cmd, "unknown option '%s'", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", a);
        }
    }
    if (!model_path)
        return cli_usage_error(cmd, "missing MODEL");
    if (!prompt)
        return cli_usage_error(cmd, "missing -p TEXT");

    qp_err err;
    qp_err_clear(&err);
    qp_rt_model *m = NULL;
    qp_tokenizer *tok = NULL;
    qp_rt_state *s = NULL;
    int32_t *ids = NULL, eos = -1;
    size_t n_ids = 0;
    float *logits = NULL;
    int rc = CLI_EXIT_OK;
    qp_status st;
    if ((st = qp_rt_model_open(model_path, &m, &err)) != QP_OK ||
        (st = qp_rt_model_tokenizer(m, &tok, &eos, &err)) != QP_OK ||
        (st = qp_tokenizer_encode(tok, prompt, strlen(prompt), 0, &ids, &n_ids, &err)) != QP_OK)
        goto fail;
    /* panels once instead of per token: the cost of generation otherwise */
    if ((st = qp_rt_model_prepack(m, (uint64_t)4 << 30, (int)n_threads, NULL, &err)) != QP_OK)
        goto fail;
    if (n_ids == 0) {
        rc = cli_usage_error(cmd, "the prompt encodes to no tokens");
        goto done;
    }
    const qp_rt_config *c = qp_rt_model_config(m);
    if ((st = qp_rt_state_new(m, (int64_t)n_ids + n_predict, 0, (int)n_threads, &s, &err)) != QP_OK)
        goto fail;
    logits = malloc((size_t)c->n_vocab * sizeof *logits);
    if (!logits) {
        qp_err_set(&err, QP_ERR_NOMEM, NULL, "out of memory");
        goto fail;
    }
    if (echo)
        for (size_t i = 0; i < n_ids; i++)
            put_piece(tok, ids[i]);
    const double t0 = now_s();
    if ((st = qp_rt_forward(m, s, ids, (int64_t)n_ids, (int64_t)n_ids - 1, 1, logits, &err)) != QP_OK)
        goto fail;
    const double t1 = now_s();
    long long generated = 0;
    volatile sig_atomic_t *cancel = cli_cancel_flag();
    while (generated < n_predict) {
        if (*cancel) {
            qp_err_set(&err, QP_ERR_INTERRUPTED, NULL, "interrupted after %lld tokens", generated);
            goto fail;
        }
        int32_t next = argmax(logits, c->n_vocab);
        generated++;
        if (next == eos)
            break;
        put_piece(tok, next);
        if (generated == n_predict)
            break;
        if ((st = qp_rt_forward(m, s, &next, 1, 0, 1, logits, &err)) != QP_OK)
            goto fail;
    }
    const double t2 = now_s();
    printf("\n");
    if (!quiet)
        fprintf(stderr, "qpack generate: prompt %zu tokens (%.1f tok/s), generated %lld tokens (%.1f tok/s)\n",
                n_ids, t1 > t0 ? (double)n_ids / (t1 - t0) : 0.0, generated,
                t2 > t1 ? (double)generated / (t2 - t1) : 0.0);
    goto done;
fail:
    fflush(stdout);
    rc = cli_fail(&err);
done:
    free(logits);
    free(ids);
    qp_rt_state_free(s);
    qp_tokenizer_free(tok);
    qp_rt_model_free(m);
    return rc;
}
