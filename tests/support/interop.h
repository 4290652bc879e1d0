/* interop.h - run GGUF files through llama.cpp from the tests.
 *
 * llama.cpp comes as the prebuilt CPU binary of the npm package
 * node-llama-cpp (tests/interop/package.json), installed on first use by
 * tests/interop/setup.sh into tests/interop/node_modules, and driven by
 * tests/interop/llama_next_token.mjs. It is an independent reader of our
 * files: if llama.cpp loads a qpack GGUF and predicts what transformers
 * predicted, the file means what we think it means.
 *
 * Return convention of the int functions: 0 success, 1 failure (mismatch or
 * llama.cpp could not run the file; why says which), QP_INTEROP_SKIP (-1)
 * when node/npm is missing or the npm install failed (why holds the reason;
 * tests then call skip()). */
#ifndef QP_TEST_INTEROP_H
#define QP_TEST_INTEROP_H

#include <stddef.h>
#include <stdint.h>

#define QP_INTEROP_SKIP (-1)

/* Tolerance of the argmax comparison: llama.cpp may pick another token than
 * the reference only if the reference logit of its pick is within this of
 * the reference maximum (a near tie that float noise may break either way). */
#define QP_INTEROP_ARGMAX_TIE 1e-3f

/* Install (once per process) and report whether llama.cpp is usable. */
int qp_interop_ready(char *why, size_t why_len);

typedef struct {
    int n_vocab;    /* width of llama.cpp's logit rows */
    int n;          /* prefixes evaluated: lengths 1..n */
    int32_t *next;  /* next[k-1]: greedy token after the first k prompt tokens */
    float *top1;    /* llama.cpp's highest logit at position k-1 */
    float *top2;    /* its second highest */
} qp_interop_next;

/* Evaluate the first n_prefixes tokens of prompt_json (0 = all) with
 * llama.cpp and fill *out (free with qp_interop_next_free). */
int qp_interop_next_tokens(const char *gguf_path, const char *prompt_json_path,
                           int n_prefixes, qp_interop_next *out,
                           char *why, size_t why_len);
void qp_interop_next_free(qp_interop_next *r);

typedef struct {
    int n_positions;  /* positions compared */
    int n_match;      /* llama.cpp's token == reference argmax */
    int n_near_tie;   /* other mismatches inside QP_INTEROP_ARGMAX_TIE */
    int n_bad;        /* mismatches beyond the tolerance */
    int first_bad;    /* first such position, -1 if none */
} qp_interop_argmax_stats;

/* Pure comparison (no node): next[i] vs ref_argmax[i] for i < n, with the
 * near-tie allowance judged on ref_logits ([n][n_vocab] f32). 0 if every
 * position matches or is a near tie, 1 otherwise (first one described in
 * why), also 1 for an out-of-range token id. */
int qp_interop_argmax_compare(const int32_t *next, const int32_t *ref_argmax, int n,
                              const float *ref_logits, int n_vocab,
                              qp_interop_argmax_stats *st, char *why, size_t why_len);

/* Run gguf_path through llama.cpp on every prefix of prompt_json_path and
 * compare with the reference (argmax from prompt.json, logits from
 * ref_logits_path, raw little-endian f32 [position][n_vocab]). Fills *st
 * when llama.cpp ran. A llama.cpp vocabulary width other than n_vocab is a
 * failure. */
int qp_interop_compare_argmax(const char *gguf_path, const char *prompt_json_path,
                              const char *ref_logits_path, int n_vocab,
                              qp_interop_argmax_stats *st, char *why, size_t why_len);

/* The same, as one verdict: 0 all positions agree (near ties allowed),
 * 1 mismatch or llama.cpp failure, -1 skipped. */
int qp_interop_check_argmax(const char *gguf_path, const char *prompt_json_path,
                            const char *ref_logits_path, int n_vocab,
                            char *why, size_t why_len);

#endif
