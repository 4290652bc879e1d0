/* interop.c - llama.cpp (through node-llama-cpp) as an oracle for the tests;
 * see interop.h. */
#include "support/interop.h"
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTEROP_DIR QP_SOURCE_DIR "/tests/interop"

static void say(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* Single-quote s for /bin/sh; 0 on success, -1 if it does not fit. */
static int shell_quote(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3)
        return -1;
    dst[n++] = '\'';
    for (; *s; s++) {
        const char *piece = (*s == '\'') ? "'\\''" : NULL;
        size_t len = piece ? 4 : 1;
        if (n + len + 2 > cap)
            return -1;
        if (piece)
            memcpy(dst + n, piece, len);
        else
            dst[n] = *s;
        n += len;
    }
    dst[n++] = '\'';
    dst[n] = '\0';
    return 0;
}

/* Last non-empty line of s, trimmed, into buf (for one-line messages). */
static void last_line(const char *s, char *buf, size_t cap)
{
    const char *end = s + strlen(s);
    while (end > s && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' '))
        end--;
    const char *start = end;
    while (start > s && start[-1] != '\n')
        start--;
    size_t len = (size_t)(end - start);
    if (len >= cap)
        len = cap - 1;
    memcpy(buf, start, len);
    buf[len] = '\0';
}

int qp_interop_ready(char *why, size_t why_len)
{
    /* setup.sh costs ~50 ms when already installed, seconds when not; run it
     * once per test process and remember the verdict. */
    static int state;  /* 0 unknown, 1 ready, 2 unavailable */
    static char reason[512];

    if (state == 0) {
        qp_run_result r = qp_run_shell("sh '%s/setup.sh'", INTEROP_DIR);
        char *marker = qp_test_read_file(INTEROP_DIR "/.setup-unavailable", NULL);
        if (r.exit_code == 0 && qp_test_file_exists(INTEROP_DIR "/.setup-ok")) {
            state = 1;
        } else if (marker) {
            state = 2;
            last_line(marker, reason, sizeof reason);
        } else {
            /* setup.sh itself could not run (no /bin/sh?): nothing to test with. */
            char line[400];
            last_line(r.err && *r.err ? r.err : (r.out ? r.out : ""), line, sizeof line);
            state = 2;
            snprintf(reason, sizeof reason, "%s/setup.sh exited %d without a marker: %s",
                     INTEROP_DIR, r.exit_code, line);
        }
        free(marker);
        qp_run_free(&r);
    }
    if (state == 1)
        return 0;
    say(why, why_len, "llama.cpp interop unavailable: %s", reason);
    return QP_INTEROP_SKIP;
}

void qp_interop_next_free(qp_interop_next *r)
{
    if (!r)
        return;
    free(r->next);
    free(r->top1);
    free(r->top2);
    memset(r, 0, sizeof *r);
}

/* Fill *out from the script's JSON; 0 or 1 with why set. */
static int parse_next_json(const char *text, int expect_n, qp_interop_next *out,
                           char *why, size_t why_len)
{
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        say(why, why_len, "llama_next_token.mjs printed no JSON");
        return 1;
    }
    int rc = 1;
    const cJSON *loaded = cJSON_GetObjectItemCaseSensitive(root, "loaded");
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(root, "n_vocab");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "results");
    if (!cJSON_IsTrue(loaded) || !cJSON_IsNumber(nv) || nv->valueint <= 0 || !cJSON_IsArray(res)) {
        say(why, why_len, "llama_next_token.mjs output lacks loaded/n_vocab/results");
        goto done;
    }
    int n = cJSON_GetArraySize(res);
    if (n <= 0 || (expect_n > 0 && n != expect_n)) {
        say(why, why_len, "llama_next_token.mjs returned %d results, expected %d", n, expect_n);
        goto done;
    }
    out->n_vocab = nv->valueint;
    out->n = n;
    out->next = calloc((size_t)n, sizeof *out->next);
    out->top1 = calloc((size_t)n, sizeof *out->top1);
    out->top2 = calloc((size_t)n, sizeof *out->top2);
    if (!out->next || !out->top1 || !out->top2) {
        say(why, why_len, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *item = cJSON_GetArrayItem(res, i);
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(item, "prefix_len");
        const cJSON *nx = cJSON_GetObjectItemCaseSensitive(item, "next");
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(item, "top");
        if (!cJSON_IsNumber(pl) || pl->valueint != i + 1 || !cJSON_IsNumber(nx) ||
            nx->valueint < 0 || nx->valueint >= out->n_vocab || !cJSON_IsArray(top) ||
            cJSON_GetArraySize(top) < 1) {
            say(why, why_len, "llama_next_token.mjs result %d is malformed", i);
            goto done;
        }
        out->next[i] = nx->valueint;
        for (int k = 0; k < 2; k++) {
            const cJSON *pair = cJSON_GetArrayItem(top, k);
            const cJSON *v = pair ? cJSON_GetArrayItem(pair, 1) : NULL;
            float f = cJSON_IsNumber(v) ? (float)v->valuedouble : NAN;
            if (k == 0)
                out->top1[i] = f;
            else
                out->top2[i] = f;
        }
    }
    rc = 0;
done:
    if (rc != 0)
        qp_interop_next_free(out);
    cJSON_Delete(root);
    return rc;
}

int qp_interop_next_tokens(const char *gguf_path, const char *prompt_json_path,
                           int n_prefixes, qp_interop_next *out,
                           char *why, size_t why_len)
{
    memset(out, 0, sizeof *out);
    int ready = qp_interop_ready(why, why_len);
    if (ready != 0)
        return ready;
    if (n_prefixes < 0) {
        say(why, why_len, "n_prefixes %d is negative", n_prefixes);
        return 1;
    }
    char qscript[1100], qgguf[2100], qprompt[2100];
    if (shell_quote(qscript, sizeof qscript, INTEROP_DIR "/llama_next_token.mjs") != 0 ||
        shell_quote(qgguf, sizeof qgguf, gguf_path) != 0 ||
        shell_quote(qprompt, sizeof qprompt, prompt_json_path) != 0) {
        say(why, why_len, "path too long: %s", gguf_path);
        return 1;
    }
    char nbuf[16] = "";
    if (n_prefixes > 0)
        snprintf(nbuf, sizeof nbuf, "%d", n_prefixes);
    qp_run_result r = qp_run_shell("exec node %s %s %s %s", qscript, qgguf, qprompt, nbuf);
    int rc;
    if (r.exit_code != 0) {
        char line[400];
        last_line(r.err ? r.err : "", line, sizeof line);
        say(why, why_len, "llama.cpp failed on %s (exit %d): %s", gguf_path, r.exit_code, line);
        rc = 1;
    } else {
        rc = parse_next_json(r.out ? r.out : "", n_prefixes, out, why, why_len);
    }
    qp_run_free(&r);
    return rc;
}

int qp_interop_argmax_compare(const int32_t *next, const int32_t *ref_argmax, int n,
                              const float *ref_logits, int n_vocab,
                              qp_interop_argmax_stats *st, char *why, size_t why_len)
{
    memset(st, 0, sizeof *st);
    st->first_bad = -1;
    st->n_positions = n;
    for (int i = 0; i < n; i++) {
        const float *row = ref_logits + (size_t)i * (size_t)n_vocab;
        int got = next[i], want = ref_argmax[i];
        if (got < 0 || got >= n_vocab || want < 0 || want >= n_vocab) {
            if (st->first_bad < 0) {
                st->first_bad = i;
                say(why, why_len, "position %d: token id %d or %d outside vocabulary %d",
                    i, got, want, n_vocab);
            }
            st->n_bad++;
            continue;
        }
        if (got == want) {
            st->n_match++;
        } else if (row[got] >= row[want] - QP_INTEROP_ARGMAX_TIE) {
            st->n_near_tie++;
        } else {
            if (st->first_bad < 0) {
                st->first_bad = i;
                say(why, why_len,
                    "position %d: llama.cpp predicts %d (reference logit %.5f), "
                    "reference argmax %d (%.5f)", i, got, (double)row[got], want,
                    (double)row[want]);
            }
            st->n_bad++;
        }
    }
    return st->n_bad ? 1 : 0;
}

/* prompt.json "argmax" (and the token count) into a malloc'ed array. */
static int32_t *read_ref_argmax(const char *prompt_json_path, int *n, char *why, size_t why_len)
{
    char *text = qp_test_read_file(prompt_json_path, NULL);
    if (!text) {
        say(why, why_len, "%s: cannot read", prompt_json_path);
        return NULL;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *toks = cJSON_GetObjectItemCaseSensitive(root, "tokens");
    const cJSON *am = cJSON_GetObjectItemCaseSensitive(root, "argmax");
    int32_t *out = NULL;
    if (!cJSON_IsArray(toks) || !cJSON_IsArray(am) || cJSON_GetArraySize(am) <= 0 ||
        cJSON_GetArraySize(am) != cJSON_GetArraySize(toks)) {
        say(why, why_len, "%s: needs \"tokens\" and \"argmax\" arrays of one length",
            prompt_json_path);
        goto done;
    }
    *n = cJSON_GetArraySize(am);
    out = malloc((size_t)*n * sizeof *out);
    if (!out)
        goto done;
    for (int i = 0; i < *n; i++) {
        const cJSON *v = cJSON_GetArrayItem(am, i);
        if (!cJSON_IsNumber(v)) {
            say(why, why_len, "%s: argmax[%d] is not a number", prompt_json_path, i);
            free(out);
            out = NULL;
            goto done;
        }
        out[i] = v->valueint;
    }
done:
    cJSON_Delete(root);
    return out;
}

int qp_interop_compare_argmax(const char *gguf_path, const char *prompt_json_path,
                              const char *ref_logits_path, int n_vocab,
                              qp_interop_argmax_stats *st, char *why, size_t why_len)
{
    memset(st, 0, sizeof *st);
    st->first_bad = -1;
    int ready = qp_interop_ready(why, why_len);
    if (ready != 0)
        return ready;

    int n = 0, rc = 1;
    size_t logits_size = 0;
    int32_t *ref_argmax = read_ref_argmax(prompt_json_path, &n, why, why_len);
    float *ref_logits = NULL;
    qp_interop_next got = {0};
    if (!ref_argmax)
        goto done;
    ref_logits = qp_test_read_file(ref_logits_path, &logits_size);
    if (!ref_logits || n_vocab <= 0 ||
        logits_size != (size_t)n * (size_t)n_vocab * sizeof(float)) {
        say(why, why_len, "%s: expected %d x %d f32 logits (%zu bytes)", ref_logits_path, n,
            n_vocab, (size_t)n * (size_t)(n_vocab > 0 ? n_vocab : 0) * sizeof(float));
        goto done;
    }
    rc = qp_interop_next_tokens(gguf_path, prompt_json_path, 0, &got, why, why_len);
    if (rc != 0)
        goto done;
    if (got.n != n || got.n_vocab != n_vocab) {
        say(why, why_len, "%s: llama.cpp gave %d rows of %d logits, reference %d of %d",
            gguf_path, got.n, got.n_vocab, n, n_vocab);
        rc = 1;
        goto done;
    }
    rc = qp_interop_argmax_compare(got.next, ref_argmax, n, ref_logits, n_vocab, st, why,
                                   why_len);
done:
    qp_interop_next_free(&got);
    free(ref_logits);
    free(ref_argmax);
    return rc;
}

int qp_interop_check_argmax(const char *gguf_path, const char *prompt_json_path,
                            const char *ref_logits_path, int n_vocab,
                            char *why, size_t why_len)
{
    qp_interop_argmax_stats st;
    return qp_interop_compare_argmax(gguf_path, prompt_json_path, ref_logits_path, n_vocab,
                                     &st, why, why_len);
}
