/* tokenizer_encode.c - text -> ids (see tokenizer.h for the pipeline). */
#include "runtime-lite/tok_internal.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Pieces up to this many bytes are cached per call: source code and prose
 * repeat the same words, so most pieces are merged once per text. */
#define CACHE_MAX_PIECE 64
/* Stop adding to the cache beyond this many distinct pieces (memory). */
#define CACHE_MAX_ENTRIES (1u << 20)

typedef struct {
    const qp_tokenizer *t;
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
    tok_bpe_work bw;
    tok_strmap cache; /* piece bytes -> (offset in cache_ids << 8 | count) */
    tok_ids cache_ids;
    tok_ids out;
    char *bl;         /* byte-level form of a piece (ignore_merges) */
    size_t bl_cap;
} enc_work;

static void work_free(enc_work *w)
{
    pcre2_match_data_free(w->md);
    pcre2_match_context_free(w->mc);
    pcre2_jit_stack_free(w->js);
    tok_bpe_work_free(&w->bw);
    tok_strmap_free(&w->cache);
    free(w->cache_ids.v);
    free(w->out.v);
    free(w->bl);
}

static int work_init(enc_work *w, const qp_tokenizer *t)
{
    memset(w, 0, sizeof *w);
    w->t = t;
    w->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    w->mc = pcre2_match_context_create(NULL);
    return w->md && w->mc && tok_strmap_init(&w->cache, 64);
}

/* ignore_merges: a piece that is itself a vocabulary token stays whole. */
static int whole_piece_id(enc_work *w, const uint8_t *p, size_t len, int32_t *id)
{
    const qp_tokenizer *t = w->t;
    if (len > (SIZE_MAX - 1) / 2)
        return 0;
    if (2 * len > w->bl_cap) {
        char *b = realloc(w->bl, 2 * len);
        if (!b)
            return 0;
        w->bl = b;
        w->bl_cap = 2 * len;
    }
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        memcpy(w->bl + k, t->bl_utf8[p[i]], t->bl_len[p[i]]);
        k += t->bl_len[p[i]];
    }
    int64_t v;
    if (!tok_strmap_get(&t->vocab, w->bl, k, &v))
        return 0;
    *id = (int32_t)v;
    return 1;
}

/* Append the ids of one pre-tokenized piece. 0 = out of memory. */
static int encode_piece(enc_work *w, const uint8_t *p, size_t len)
{
    int cacheable = len <= CACHE_MAX_PIECE;
    int64_t v;
    if (cacheable && tok_strmap_get(&w->cache, (const char *)p, len, &v)) {
        size_t off = (size_t)(v >> 8), cnt = (size_t)(v & 0xff);
        for (size_t i = 0; i < cnt; i++) {
            if (!tok_ids_push(&w->out, w->cache_ids.v[off + i]))
                return 0;
        }
        return 1;
    }
    size_t start = w->out.n;
    int32_t id;
    if (w->t->ignore_merges && whole_piece_id(w, p, len, &id)) {
        if (!tok_ids_push(&w->out, id))
            return 0;
    } else if (!tok_bpe_word(&w->t->bpe, &w->bw, p, len, &w->out)) {
        return 0;
    }
    if (cacheable && w->cache.n < CACHE_MAX_ENTRIES) {
        /* At most one id per byte, so the count fits in 8 bits. */
        size_t off = w->cache_ids.n, cnt = w->out.n - start;
        for (size_t i = 0; i < cnt; i++) {
            if (!tok_ids_push(&w->cache_ids, w->out.v[start + i]))
                return 0;
        }
        if (!tok_strmap_put(&w->cache, (const char *)p, len, (int64_t)(off << 8 | cnt)))
            return 0;
    }
    return 1;
}

/* Split a normalized segment with the pre-tokenizer regex ("Isolated": both
 * the matches and any text between them become pieces) and encode each. */
static qp_status split_and_encode(enc_work *w, const uint8_t *s, size_t len, qp_err *err)
{
    size_t gap = 0, from = 0;
    while (from < len) {
        int rc = pcre2_match(w->t->re, s, len, from, PCRE2_NO_UTF_CHECK, w->md, w->mc);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !w->js) {
            /* The default 32 KiB JIT stack is enough for ordinary text; give
             * pathological input a bigger one (made lazily: it costs an mmap)
             * and retry the same position. */
            w->js = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
            if (!w->js)
                return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory for the regex stack");
            pcre2_jit_stack_assign(w->mc, NULL, w->js);
            continue;
        }
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return qp_err_set(err, QP_ERR_UNSUPPORTED, NULL,
                              "pre-tokenizer regex failed on the text: %s", (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {
            /* An empty match yields no piece; step one character on. */
            from = ms + 1;
            while (from < len && (s[from] & 0xc0) == 0x80)
                from++;
            continue;
        }
        if (ms > gap && !encode_piece(w, s + gap, ms - gap))
            return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory encoding");
        if (!encode_piece(w, s + ms, me - ms))
            return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory encoding");
        gap = from = me;
    }
    if (gap < len && !encode_piece(w, s + gap, len - gap))
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory encoding");
    return QP_OK;
}

/* A segment between added tokens: normalize, then split and encode. */
static qp_status encode_segment(enc_work *w, const uint8_t *s, size_t len, qp_err *err)
{
    if (len == 0)
        return QP_OK;
    int ascii = 1;
    for (size_t i = 0; i < len && ascii; i++)
        ascii = s[i] < 0x80;
    /* ASCII text is already in NFC. */
    if (!w->t->nfc || ascii)
        return split_and_encode(w, s, len, err);
    utf8proc_uint8_t *norm = NULL;
    utf8proc_ssize_t n = utf8proc_map(s, (utf8proc_ssize_t)len, &norm,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (n < 0) {
        free(norm);
        return qp_err_set(err, n == UTF8PROC_ERROR_NOMEM ? QP_ERR_NOMEM : QP_ERR_BAD_INPUT, NULL,
                          "NFC normalization failed: %s", utf8proc_errmsg(n));
    }
    qp_status st = split_and_encode(w, norm, (size_t)n, err);
    free(norm);
    return st;
}

/* Offset of the first invalid UTF-8 sequence, or len when all is valid. */
static size_t utf8_invalid_at(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0)
            return i;
        i += (size_t)k;
    }
    return len;
}

/* Length of the longest added token starting at s[0], 0 if none. */
static size_t match_added(const qp_tokenizer *t, const uint8_t *s, size_t left, unsigned flags,
                          int32_t *id)
{
    for (size_t k = t->added_start[s[0]]; k < t->added_start[s[0] + 1]; k++) {
        int32_t a = t->added[k];
        if ((flags & QP_TOK_ENCODE_NO_CONTROL) && t->types[a] == QP_TOKEN_CONTROL)
            continue;
        size_t l;
        const char *txt = tok_text(t, a, &l);
        if (l <= left && memcmp(txt, s, l) == 0) {
            *id = a;
            return l;
        }
    }
    return 0;
}

qp_status qp_tokenizer_encode(const qp_tokenizer *t, const char *text, size_t len,
                              unsigned flags, int32_t **ids, size_t *n, qp_err *err)
{
    if (!t || !ids || !n || (len && !text))
        return qp_err_set(err, QP_ERR_USAGE, NULL, "qp_tokenizer_encode: bad arguments");
    *ids = NULL;
    *n = 0;
    const uint8_t *s = (const uint8_t *)text;
    size_t bad = utf8_invalid_at(s, len);
    if (bad < len) {
        qp_err_set(err, QP_ERR_BAD_INPUT, NULL, "text is not valid UTF-8");
        qp_err_set_offset(err, (int64_t)bad);
        return QP_ERR_BAD_INPUT;
    }
    enc_work w;
    if (!work_init(&w, t)) {
        work_free(&w);
        return qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory encoding");
    }
    qp_status st = QP_OK;
    size_t seg = 0, pos = 0;
    while (pos < len && st == QP_OK) {
        int32_t id;
        size_t l = t->n_added ? match_added(t, s + pos, len - pos, flags, &id) : 0;
        if (l == 0) {
            pos++;
            continue;
        }
        st = encode_segment(&w, s + seg, pos - seg, err);
        if (st == QP_OK && !tok_ids_push(&w.out, id))
            st = qp_err_set(err, QP_ERR_NOMEM, NULL, "out of memory encoding");
        pos += l;
        seg = pos;
    }
    if (st == QP_OK)
        st = encode_segment(&w, s + seg, len - seg, err);
    if (st == QP_OK) {
        *ids = w.out.v;
        *n = w.out.n;
        w.out.v = NULL;
    }
    work_free(&w);
    return st;
}
