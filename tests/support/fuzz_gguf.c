/* fuzz_gguf.c - fuzz targets for the GGUF reader and for a tokenizer built
 * from a GGUF's tokenizer.ggml.* arrays. */
#include "support/fuzz_targets.h"

#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "runtime-lite/tokenizer.h"

#define GGUF_NAME "fuzz/model.gguf"

/* Read a byte so ASan checks that the reader's pointers are in bounds. */
static volatile unsigned char g_sink;
static void touch(const void *p, uint64_t n)
{
    if (n == 0)
        return;
    const unsigned char *b = p;
    g_sink ^= b[0];
    g_sink ^= b[n - 1];
}

static void walk(const qp_gguf *g)
{
    char name[256];
    for (int64_t i = 0; i < qp_gguf_kv_count(g); i++) {
        qp_gguf_str k = qp_gguf_kv_key(g, i);
        touch(k.ptr, k.len);
        if (k.len < sizeof name && !memchr(k.ptr, '\0', k.len)) {
            memcpy(name, k.ptr, k.len);
            name[k.len] = '\0';
            /* Keys are unique, so lookup finds this one (or an earlier
             * key equal to it, which would be a reader bug). */
            if (qp_gguf_find_key(g, name) != i)
                abort();
        }
        uint64_t u;
        int64_t s;
        double d;
        (void)qp_gguf_kv_as_u64(g, i, &u);
        (void)qp_gguf_kv_as_i64(g, i, &s);
        (void)qp_gguf_kv_as_f64(g, i, &d);
        qp_gguf_str v = qp_gguf_kv_str(g, i);
        touch(v.ptr, v.len);
        if (qp_gguf_kv_type(g, i) != QP_GGUF_ARRAY)
            continue;
        qp_gguf_vtype at = qp_gguf_arr_type(g, i);
        uint64_t n = qp_gguf_arr_len(g, i);
        const void *raw = qp_gguf_arr_data(g, i);
        if (raw)
            touch(raw, n * qp_gguf_vtype_size(at));
        if (at == QP_GGUF_STRING)
            for (uint64_t j = 0; j < n; j += (j < 64 ? 1 : n / 64 + 1)) {
                qp_gguf_str e = qp_gguf_arr_str(g, i, j);
                touch(e.ptr, e.len);
            }
    }
    for (int64_t i = 0; i < qp_gguf_tensor_count(g); i++) {
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, i);
        touch(t->name.ptr, t->name.len);
        touch(t->data, t->nbytes);
        if (t->n_dims > QP_GGUF_MAX_DIMS)
            abort();
        if (t->name.len < sizeof name && !memchr(t->name.ptr, '\0', t->name.len)) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = '\0';
            if (qp_gguf_find_tensor(g, name) != t)
                abort();
        }
    }
}

int qp_fuzz_gguf(const uint8_t *data, size_t size)
{
    qp_err err;
    qp_err_clear(&err);
    qp_gguf *g = NULL;
    qp_status st = qp_gguf_open_memory(data, size, GGUF_NAME, &g, &err);
    qp_fuzz_check_err(&err, st, GGUF_NAME);
    if (st != QP_OK)
        return 0;
    walk(g);
    qp_err_clear(&err);
    qp_status cs = qp_gguf_verify_checksums(g, &err);
    if (cs != QP_ERR_NOT_FOUND)
        qp_fuzz_check_err(&err, cs, GGUF_NAME);
    qp_gguf_close(g);
    return 1;
}

/* ------------------------------------------------------------ gguf_vocab */

/* Text touching every path of the encoder: ASCII words and digits, runs of
 * spaces and newlines, contractions, accents (NFC), CJK, an emoji and the
 * special-token spellings. */
static const char SAMPLE[] = "Hello world's 1234  \n\n\tdef f(x):\n    return x+1 "
                             "cafe\xcc\x81 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80"
                             "<|im_start|>user<|im_end|><|endoftext|>";

/* Encode SAMPLE, decode the ids back, and look at a few pieces. */
void qp_fuzz_exercise_tokenizer(const qp_tokenizer *t, const char *name);
void qp_fuzz_exercise_tokenizer(const qp_tokenizer *t, const char *name)
{
    qp_err err;
    int32_t *ids = NULL;
    size_t n = 0;
    for (unsigned flags = 0; flags < 2; flags++) {
        qp_err_clear(&err);
        qp_status st = qp_tokenizer_encode(t, SAMPLE, sizeof SAMPLE - 1, flags, &ids, &n, &err);
        if (st != QP_OK) {
            /* Valid UTF-8 in, so only a tokenizer that cannot cover some
             * bytes may refuse; it must still say why. */
            qp_fuzz_check_err(&err, st, NULL);
            continue;
        }
        char *text = NULL;
        size_t len = 0;
        qp_err_clear(&err);
        st = qp_tokenizer_decode(t, ids, n, 0, &text, &len, &err);
        if (st != QP_OK)
            abort(); /* ids the encoder made must decode */
        free(text);
        free(ids);
        ids = NULL;
    }
    int64_t nt = qp_tokenizer_n_tokens(t);
    for (int32_t id = -1; id < 300 && id <= nt; id++) {
        size_t plen = 0;
        const char *p = qp_tokenizer_piece(t, id, &plen);
        if (p)
            touch(p, plen);
        (void)qp_tokenizer_token_type(t, id);
    }
    (void)qp_tokenizer_find(t, "<|im_end|>", 10);
    (void)name;
}

static int str_array(const qp_gguf *g, const char *key, int64_t *idx)
{
    *idx = qp_gguf_find_key(g, key);
    return *idx >= 0 && qp_gguf_kv_type(g, *idx) == QP_GGUF_ARRAY &&
           qp_gguf_arr_type(g, *idx) == QP_GGUF_STRING;
}

int qp_fuzz_gguf_vocab(const uint8_t *data, size_t size)
{
    qp_err err;
    qp_err_clear(&err);
    qp_gguf *g = NULL;
    qp_status st = qp_gguf_open_memory(data, size, GGUF_NAME, &g, &err);
    if (st != QP_OK)
        return 0;
    /* The arrays as the runtime reads them (runtime-lite/model_tok.c). */
    int64_t ti, mi, yi = qp_gguf_find_key(g, "tokenizer.ggml.token_type");
    if (!str_array(g, "tokenizer.ggml.tokens", &ti)) {
        qp_gguf_close(g);
        return 0;
    }
    int has_merges = str_array(g, "tokenizer.ggml.merges", &mi);
    int64_t n_tok = (int64_t)qp_gguf_arr_len(g, ti);
    int64_t n_mer = has_merges ? (int64_t)qp_gguf_arr_len(g, mi) : 0;
    int32_t *types = NULL;
    if (yi >= 0 && qp_gguf_kv_type(g, yi) == QP_GGUF_ARRAY && qp_gguf_arr_type(g, yi) == QP_GGUF_I32 &&
        (int64_t)qp_gguf_arr_len(g, yi) == n_tok) {
        types = malloc((size_t)(n_tok + 1) * sizeof *types);
        if (!types)
            abort();
        memcpy(types, qp_gguf_arr_data(g, yi), (size_t)n_tok * sizeof *types);
    }
    const char **tok = calloc((size_t)n_tok + 1, sizeof *tok);
    size_t *tok_len = calloc((size_t)n_tok + 1, sizeof *tok_len);
    const char **mer = calloc((size_t)n_mer + 1, sizeof *mer);
    size_t *mer_len = calloc((size_t)n_mer + 1, sizeof *mer_len);
    if (!tok || !tok_len || !mer || !mer_len)
        abort();
    for (int64_t i = 0; i < n_tok; i++) {
        qp_gguf_str s = qp_gguf_arr_str(g, ti, (uint64_t)i);
        tok[i] = s.ptr ? s.ptr : "";
        tok_len[i] = (size_t)s.len;
    }
    for (int64_t i = 0; i < n_mer; i++) {
        qp_gguf_str s = qp_gguf_arr_str(g, mi, (uint64_t)i);
        mer[i] = s.ptr ? s.ptr : "";
        mer_len[i] = (size_t)s.len;
    }
    qp_tokenizer_spec spec = {
        .n_tokens = n_tok,
        .tokens = tok,
        .token_lens = tok_len,
        .token_types = types,
        .n_merges = n_mer,
        .merges = mer,
        .merge_lens = mer_len,
        .normalizer_nfc = 1,
        .ignore_merges = size > 0 && (data[size - 1] & 1),
    };
    qp_tokenizer *t = NULL;
    qp_err_clear(&err);
    st = qp_tokenizer_from_spec(&spec, GGUF_NAME, &t, &err);
    qp_fuzz_check_err(&err, st, GGUF_NAME);
    if (st == QP_OK)
        qp_fuzz_exercise_tokenizer(t, GGUF_NAME);
    qp_tokenizer_free(t);
    free(tok);
    free(tok_len);
    free(mer);
    free(mer_len);
    free(types);
    qp_gguf_close(g);
    return st == QP_OK;
}

/* ------------------------------------------------------------ tok_spec */

/* Tokenizer arrays straight from the input, without a GGUF around them, so
 * mutations reach the vocabulary and merge checks and the BPE encoder
 * instead of the container: a flags byte (bit 0 NFC, bit 1 ignore_merges),
 * then lines up to the first empty line are tokens (a leading \x01 makes a
 * control token, \x02 a user-defined one, \x05 an unused one), the lines
 * after it are merges. */
int qp_fuzz_tok_spec(const uint8_t *input, size_t input_size)
{
    if (input_size == 0)
        return 0;
    const unsigned flags = input[0];
    const uint8_t *data = input + 1;
    const size_t size = input_size - 1;
    size_t n_lines = 1;
    for (size_t i = 0; i < size; i++)
        n_lines += data[i] == '\n';
    const char **line = calloc(n_lines, sizeof *line);
    size_t *len = calloc(n_lines, sizeof *len);
    int32_t *types = calloc(n_lines, sizeof *types);
    if (!line || !len || !types)
        abort();
    size_t n = 0, start = 0, n_tok = SIZE_MAX;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n')
            continue;
        if (i == start && n_tok == SIZE_MAX) {
            n_tok = n; /* the empty line ends the tokens */
        } else {
            const char *p = (const char *)data + start;
            size_t l = i - start;
            int32_t ty = QP_TOKEN_NORMAL;
            if (n_tok == SIZE_MAX && l > 0 && (p[0] == 1 || p[0] == 2 || p[0] == 5)) {
                ty = p[0] == 1 ? QP_TOKEN_CONTROL : p[0] == 2 ? QP_TOKEN_USER_DEFINED : QP_TOKEN_UNUSED;
                p++;
                l--;
            }
            line[n] = p;
            len[n] = l;
            types[n] = ty;
            n++;
        }
        start = i + 1;
    }
    if (n_tok == SIZE_MAX)
        n_tok = n;
    qp_tokenizer_spec spec = {
        .n_tokens = (int64_t)n_tok,
        .tokens = line,
        .token_lens = len,
        .token_types = types,
        .n_merges = (int64_t)(n - n_tok),
        .merges = line + n_tok,
        .merge_lens = len + n_tok,
        .normalizer_nfc = (flags & 1) != 0,
        .ignore_merges = (flags & 2) != 0,
    };
    qp_err err;
    qp_err_clear(&err);
    qp_tokenizer *t = NULL;
    qp_status st = qp_tokenizer_from_spec(&spec, "fuzz/tokens.txt", &t, &err);
    qp_fuzz_check_err(&err, st, "fuzz/tokens.txt");
    if (st == QP_OK)
        qp_fuzz_exercise_tokenizer(t, "fuzz/tokens.txt");
    qp_tokenizer_free(t);
    free(line);
    free(len);
    free(types);
    return st == QP_OK;
}
