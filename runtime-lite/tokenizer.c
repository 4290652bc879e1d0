/* tokenizer.c - building a tokenizer from arrays, decoding, accessors.
 * Encoding is in tokenizer_encode.c, tokenizer.json reading in
 * tokenizer_load.c. */
#include "runtime-lite/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "common/qp_checked.h"

const char qp_tokenizer_qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

void qp_tokenizer_free(qp_tokenizer *t)
{
    if (!t)
        return;
    free(t->types);
    free(t->text_pool);
    free(t->text_off);
    free(t->piece_pool);
    free(t->piece_off);
    tok_strmap_free(&t->vocab);
    tok_u64map_free(&t->bpe.merges);
    free(t->added);
    pcre2_code_free(t->re);
    free(t);
}

static const char *nm(const char *name)
{
    return name ? name : "tokenizer";
}

/* Copy the token texts into one pool; holes become empty and UNUSED. */
static qp_status copy_texts(qp_tokenizer *t, const qp_tokenizer_spec *s, const char *name,
                            qp_err *err)
{
    size_t n = (size_t)s->n_tokens;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->tokens[i] && !qp_add_u64(total, s->token_lens ? s->token_lens[i]
                                                             : strlen(s->tokens[i]), &total))
            return qp_err_set(err, QP_ERR_BAD_INPUT, nm(name), "token lengths overflow");
    }
    if (total >= SIZE_MAX)
        return qp_err_set(err, QP_ERR_BAD_INPUT, nm(name), "token texts too large");
    t->text_pool = malloc((size_t)total + 1);
    t->text_off = malloc((n + 1) * sizeof *t->text_off);
    t->types = malloc((n ? n : 1) * sizeof *t->types);
    if (!t->text_pool || !t->text_off || !t->types)
        return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for %zu tokens", n);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        t->text_off[i] = off;
        if (!s->tokens[i]) {
            t->types[i] = QP_TOKEN_UNUSED;
            continue;
        }
        size_t len = s->token_lens ? s->token_lens[i] : strlen(s->tokens[i]);
        memcpy(t->text_pool + off, s->tokens[i], len);
        off += len;
        t->types[i] = s->token_types ? s->token_types[i] : QP_TOKEN_NORMAL;
    }
    t->text_off[n] = off;
    return QP_OK;
}

/* Byte-level decoding of one token: every character maps back to a byte,
 * or, if any does not (an added token like "<｜x｜>"), the raw text. */
static size_t decode_token(const char *s, size_t len, char *out)
{
    size_t k = 0, i = 0;
    while (i < len) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t used = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                                 (utf8proc_ssize_t)(len - i), &cp);
        int b = used > 0 ? tok_cp_to_byte((uint32_t)cp) : -1;
        if (b < 0) {
            memcpy(out, s, len);
            return len;
        }
        out[k++] = (char)b;
        i += (size_t)used;
    }
    return k;
}

static qp_status build_pieces(qp_tokenizer *t, const char *name, qp_err *err)
{
    size_t n = (size_t)t->n_tokens;
    /* A decoded token is never longer than its text. */
    t->piece_pool = malloc(t->text_off[n] + 1);
    t->piece_off = malloc((n + 1) * sizeof *t->piece_off);
    if (!t->piece_pool || !t->piece_off)
        return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for decoded tokens");
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *s = tok_text(t, (int64_t)i, &len);
        t->piece_off[i] = off;
        off += decode_token(s, len, t->piece_pool + off);
    }
    t->piece_off[n] = off;
    return QP_OK;
}

static qp_status build_vocab(qp_tokenizer *t, const char *name, qp_err *err)
{
    if (!tok_strmap_init(&t->vocab, (size_t)t->n_tokens))
        return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for the vocabulary");
    for (int64_t i = 0; i < t->n_tokens; i++) {
        if (t->types[i] != QP_TOKEN_NORMAL)
            continue;
        size_t len;
        const char *s = tok_text(t, i, &len);
        if (!tok_strmap_put(&t->vocab, s, len, i))
            return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for the vocabulary");
    }
    for (int b = 0; b < 256; b++) {
        utf8proc_uint8_t buf[4];
        utf8proc_ssize_t k = utf8proc_encode_char((utf8proc_int32_t)tok_byte_to_cp((uint8_t)b), buf);
        memcpy(t->bl_utf8[b], buf, 2); /* code points < U+0800: at most 2 bytes */
        t->bl_len[b] = (uint8_t)k;
        int64_t id;
        t->bpe.byte_id[b] = tok_strmap_get(&t->vocab, (const char *)buf, (size_t)k, &id)
                                ? (int32_t)id : -1;
    }
    return QP_OK;
}

static qp_status build_merges(qp_tokenizer *t, const qp_tokenizer_spec *s, const char *name,
                              qp_err *err)
{
    if (!tok_u64map_init(&t->bpe.merges, (size_t)s->n_merges))
        return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for merges");
    char *cat = NULL;
    size_t cat_cap = 0;
    qp_status st = QP_OK;
    for (int64_t r = 0; r < s->n_merges && st == QP_OK; r++) {
        const char *m = s->merges[r];
        if (!m) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, nm(name), "merge %lld is missing", (long long)r);
            break;
        }
        size_t len = s->merge_lens ? s->merge_lens[r] : strlen(m);
        const char *sp = memchr(m, ' ', len);
        if (!sp || sp == m || sp + 1 == m + len) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, nm(name),
                            "merge %lld is not two tokens separated by a space", (long long)r);
            break;
        }
        size_t la = (size_t)(sp - m), lb = len - la - 1;
        if (la + lb > cat_cap) {
            char *c = realloc(cat, la + lb);
            if (!c) {
                st = qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for merges");
                break;
            }
            cat = c;
            cat_cap = la + lb;
        }
        memcpy(cat, m, la);
        memcpy(cat + la, sp + 1, lb);
        int64_t a, b, ab;
        if (!tok_strmap_get(&t->vocab, m, la, &a) || !tok_strmap_get(&t->vocab, sp + 1, lb, &b) ||
            !tok_strmap_get(&t->vocab, cat, la + lb, &ab)) {
            st = qp_err_set(err, QP_ERR_BAD_INPUT, nm(name),
                            "merge %lld (\"%.*s\") names a token not in the vocabulary",
                            (long long)r, (int)(len < 64 ? len : 64), m);
            break;
        }
        /* A repeated pair keeps its last rank, as Hugging Face's map does. */
        if (!tok_u64map_set(&t->bpe.merges, (uint64_t)a << 32 | (uint64_t)b,
                            (uint64_t)r << 32 | (uint64_t)ab))
            st = qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for merges");
    }
    free(cat);
    return st;
}

/* Sort key of an added token: first byte up, then longest first (so the
 * first hit in a bucket is the longest match), then lowest id. */
typedef struct {
    uint8_t first;
    size_t len;
    int32_t id;
} added_key;

static int cmp_added(const void *pa, const void *pb)
{
    const added_key *a = pa, *b = pb;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static qp_status build_added(qp_tokenizer *t, const char *name, qp_err *err)
{
    size_t n = 0;
    for (int64_t i = 0; i < t->n_tokens; i++) {
        size_t len;
        tok_text(t, i, &len);
        if ((t->types[i] == QP_TOKEN_CONTROL || t->types[i] == QP_TOKEN_USER_DEFINED) && len > 0)
            n++;
    }
    t->added = malloc((n ? n : 1) * sizeof *t->added);
    added_key *keys = malloc((n ? n : 1) * sizeof *keys);
    if (!t->added || !keys) {
        free(keys);
        return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory for added tokens");
    }
    for (int64_t i = 0; i < t->n_tokens; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        if ((t->types[i] == QP_TOKEN_CONTROL || t->types[i] == QP_TOKEN_USER_DEFINED) && len > 0)
            keys[t->n_added++] = (added_key){(uint8_t)s[0], len, (int32_t)i};
    }
    qsort(keys, t->n_added, sizeof *keys, cmp_added);
    for (size_t i = 0; i < t->n_added; i++)
        t->added[i] = keys[i].id;
    free(keys);
    size_t k = 0;
    for (int c = 0; c < 256; c++) {
        t->added_start[c] = k;
        while (k < t->n_added) {
            size_t len;
            const char *s = tok_text(t, t->added[k], &len);
            if ((uint8_t)s[0] != c)
                break;
            k++;
        }
    }
    t->added_start[256] = k;
    return QP_OK;
}

static qp_status build_regex(qp_tokenizer *t, const char *pattern, const char *name, qp_err *err)
{
    int code;
    PCRE2_SIZE at;
    t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &code, &at, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return qp_err_set(err, QP_ERR_BAD_INPUT, nm(name),
                          "pre-tokenizer regex does not compile at %zu: %s", (size_t)at,
                          (const char *)msg);
    }
    /* JIT makes matching several times faster; without it (unsupported
     * CPU, no executable memory) the interpreter gives the same results. */
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return QP_OK;
}

qp_status qp_tokenizer_from_spec(const qp_tokenizer_spec *s, const char *name,
                                 qp_tokenizer **out, qp_err *err)
{
    if (!out)
        return qp_err_set(err, QP_ERR_USAGE, nm(name), "qp_tokenizer_from_spec: NULL output");
    *out = NULL;
    if (!s || s->n_tokens < 0 || s->n_tokens >= INT32_MAX || s->n_merges < 0 ||
        s->n_merges >= INT32_MAX || (s->n_tokens && !s->tokens) || (s->n_merges && !s->merges))
        return qp_err_set(err, QP_ERR_USAGE, nm(name), "qp_tokenizer_from_spec: bad arrays");
    qp_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory");
    t->n_tokens = s->n_tokens;
    t->nfc = s->normalizer_nfc != 0;
    t->ignore_merges = s->ignore_merges != 0;
    qp_status st = copy_texts(t, s, name, err);
    if (st == QP_OK)
        st = build_pieces(t, name, err);
    if (st == QP_OK)
        st = build_vocab(t, name, err);
    if (st == QP_OK)
        st = build_merges(t, s, name, err);
    if (st == QP_OK)
        st = build_added(t, name, err);
    if (st == QP_OK)
        st = build_regex(t, s->pre_regex ? s->pre_regex : qp_tokenizer_qwen2_regex, name, err);
    if (st != QP_OK) {
        qp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return QP_OK;
}

qp_status qp_tokenizer_from_hf_vocab(const qp_hf_vocab *v, const char *pre_regex,
                                     const char *name, qp_tokenizer **out, qp_err *err)
{
    if (!v)
        return qp_err_set(err, QP_ERR_USAGE, nm(name), "qp_tokenizer_from_hf_vocab: NULL vocab");
    size_t *lens = malloc((v->n_tokens ? (size_t)v->n_tokens : 1) * sizeof *lens);
    if (!lens)
        return qp_err_set(err, QP_ERR_NOMEM, nm(name), "out of memory");
    for (int64_t i = 0; i < v->n_tokens; i++)
        lens[i] = v->token_len[i];
    qp_tokenizer_spec s = {
        .n_tokens = v->n_tokens,
        .tokens = (const char *const *)v->tokens,
        .token_lens = lens,
        .token_types = v->token_type,
        .n_merges = v->n_merges,
        .merges = (const char *const *)v->merges,
        .pre_regex = pre_regex,
        .normalizer_nfc = v->normalizer_nfc,
    };
    qp_status st = qp_tokenizer_from_spec(&s, name, out, err);
    free(lens);
    return st;
}

qp_status qp_tokenizer_decode(const qp_tokenizer *t, const int32_t *ids, size_t n,
                              unsigned flags, char **text, size_t *len, qp_err *err)
{
    if (!t || !text || !len || (n && !ids))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_tokenizer_decode: bad arguments");
    *text = NULL;
    *len = 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_tokens) {
            qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "token id %d at position %zu is not in [0, %lld)",
                       ids[i], i, (long long)t->n_tokens);
            return QP_ERR_BAD_INPUT;
        }
        total += t->piece_off[ids[i] + 1] - t->piece_off[ids[i]];
    }
    char *out = malloc(total + 1);
    if (!out)
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory decoding %zu tokens", n);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if ((flags & QP_TOK_DECODE_SKIP_CONTROL) && t->types[ids[i]] == QP_TOKEN_CONTROL)
            continue;
        size_t pl = t->piece_off[ids[i] + 1] - t->piece_off[ids[i]];
        memcpy(out + k, t->piece_pool + t->piece_off[ids[i]], pl);
        k += pl;
    }
    out[k] = '\0';
    *text = out;
    *len = k;
    return QP_OK;
}

int64_t qp_tokenizer_n_tokens(const qp_tokenizer *t)
{
    return t ? t->n_tokens : 0;
}

int qp_tokenizer_token_type(const qp_tokenizer *t, int32_t id)
{
    if (!t || id < 0 || id >= t->n_tokens)
        return 0;
    return t->types[id];
}

const char *qp_tokenizer_piece(const qp_tokenizer *t, int32_t id, size_t *len)
{
    if (!t || id < 0 || id >= t->n_tokens) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece_pool + t->piece_off[id];
}

int32_t qp_tokenizer_find(const qp_tokenizer *t, const char *text, size_t len)
{
    if (!t || (!text && len))
        return -1;
    for (size_t i = 0; i < t->n_added; i++) {
        size_t l;
        const char *s = tok_text(t, t->added[i], &l);
        if (l == len && memcmp(s, text, len) == 0)
            return t->added[i];
    }
    int64_t id;
    if (len && tok_strmap_get(&t->vocab, text, len, &id))
        return (int32_t)id;
    return -1;
}
