/* tok_internal.h - the tokenizer's representation, shared by the files of
 * runtime-lite that build, encode and decode (not a public header). */
#ifndef QP_TOK_INTERNAL_H
#define QP_TOK_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime-lite/tok_bpe.h"
#include "runtime-lite/tok_map.h"
#include "runtime-lite/tokenizer.h"

struct qp_tokenizer {
    int64_t n_tokens;
    int32_t *types;       /* [n_tokens] QP_TOKEN_* */
    char *text_pool;      /* token texts (byte-level form), concatenated */
    size_t *text_off;     /* [n_tokens + 1] */
    char *piece_pool;     /* what each token decodes to, concatenated */
    size_t *piece_off;    /* [n_tokens + 1] */
    tok_strmap vocab;     /* NORMAL token text -> id (lowest id wins) */
    tok_bpe bpe;
    /* Added tokens (control, user-defined) bucketed by first byte, longest
     * first within a bucket, so the first hit is the longest match. */
    int32_t *added;
    size_t n_added;
    size_t added_start[257];
    /* Byte-level form of each byte (1 or 2 UTF-8 bytes), for ignore_merges. */
    uint8_t bl_utf8[256][2];
    uint8_t bl_len[256];
    pcre2_code *re;
    int nfc;
    int ignore_merges;
};

/* GPT-2's byte <-> code point table: printable Latin-1 bytes stand for
 * themselves, the other 68 bytes are renumbered from U+0100 up. */
static inline uint32_t tok_byte_to_cp(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    if (b <= 32)
        return 256u + b;               /* 0..32    -> U+0100..U+0120 */
    if (b <= 160)
        return 256u + 33u + (b - 127u); /* 127..160 -> U+0121..U+0142 */
    return 256u + 67u;                 /* 173      -> U+0143 */
}

/* Inverse of tok_byte_to_cp; -1 for code points outside the table. */
static inline int tok_cp_to_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp >= 256 && cp <= 288)
        return (int)(cp - 256);
    if (cp >= 289 && cp <= 322)
        return (int)(cp - 289 + 127);
    if (cp == 323)
        return 173;
    return -1;
}

static inline const char *tok_text(const struct qp_tokenizer *t, int64_t id, size_t *len)
{
    *len = t->text_off[id + 1] - t->text_off[id];
    return t->text_pool + t->text_off[id];
}

#endif
