/* gguf_craft.c - GGUF byte-image builder for tests (see gguf_craft.h). */
#include "support/gguf_craft.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"

void gguf_craft_init(gguf_craft *c)
{
    memset(c, 0, sizeof *c);
}

void gguf_craft_free(gguf_craft *c)
{
    free(c->p);
    memset(c, 0, sizeof *c);
}

void gguf_craft_bytes(gguf_craft *c, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (c->cap - c->len < n) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap - c->len < n)
            cap *= 2;
        uint8_t *q = realloc(c->p, cap);
        if (!q) {
            fprintf(stderr, "gguf_craft: out of memory\n");
            abort();
        }
        c->p = q;
        c->cap = cap;
    }
    if (p)
        memcpy(c->p + c->len, p, n);
    else
        memset(c->p + c->len, 0, n);
    c->len += n;
}

void gguf_craft_zeros(gguf_craft *c, size_t n)
{
    gguf_craft_bytes(c, NULL, n);
}

void gguf_craft_u8(gguf_craft *c, uint8_t v)
{
    gguf_craft_bytes(c, &v, 1);
}

void gguf_craft_u16(gguf_craft *c, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    gguf_craft_bytes(c, b, 2);
}

void gguf_craft_u32(gguf_craft *c, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    gguf_craft_bytes(c, b, 4);
}

void gguf_craft_u64(gguf_craft *c, uint64_t v)
{
    gguf_craft_u32(c, (uint32_t)v);
    gguf_craft_u32(c, (uint32_t)(v >> 32));
}

void gguf_craft_f32(gguf_craft *c, float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    gguf_craft_u32(c, b);
}

void gguf_craft_f64(gguf_craft *c, double v)
{
    uint64_t b;
    memcpy(&b, &v, 8);
    gguf_craft_u64(c, b);
}

void gguf_craft_pad(gguf_craft *c, uint64_t align)
{
    if (align > 1 && c->len % align)
        gguf_craft_zeros(c, (size_t)(align - c->len % align));
}

size_t gguf_craft_pos(const gguf_craft *c)
{
    return c->len;
}

void gguf_craft_patch_u32(gguf_craft *c, size_t at, uint32_t v)
{
    for (int i = 0; i < 4 && at + (size_t)i < c->len; i++)
        c->p[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

void gguf_craft_patch_u64(gguf_craft *c, size_t at, uint64_t v)
{
    gguf_craft_patch_u32(c, at, (uint32_t)v);
    gguf_craft_patch_u32(c, at + 4, (uint32_t)(v >> 32));
}

void gguf_craft_truncate(gguf_craft *c, size_t len)
{
    if (len < c->len)
        c->len = len;
}

void gguf_craft_str(gguf_craft *c, const char *s)
{
    gguf_craft_str_len(c, strlen(s), s, strlen(s));
}

void gguf_craft_str_len(gguf_craft *c, uint64_t claimed, const void *bytes, size_t n)
{
    gguf_craft_u64(c, claimed);
    gguf_craft_bytes(c, bytes, n);
}

void gguf_craft_header(gguf_craft *c, uint32_t magic, uint32_t version, uint64_t n_tensors,
                       uint64_t n_kv)
{
    gguf_craft_u32(c, magic);
    gguf_craft_u32(c, version);
    gguf_craft_u64(c, n_tensors);
    gguf_craft_u64(c, n_kv);
}

void gguf_craft_key(gguf_craft *c, const char *key, uint32_t vtype)
{
    gguf_craft_str(c, key);
    gguf_craft_u32(c, vtype);
}

void gguf_craft_kv_u32(gguf_craft *c, const char *key, uint32_t v)
{
    gguf_craft_key(c, key, 4);
    gguf_craft_u32(c, v);
}

void gguf_craft_kv_u64(gguf_craft *c, const char *key, uint64_t v)
{
    gguf_craft_key(c, key, 10);
    gguf_craft_u64(c, v);
}

void gguf_craft_kv_str(gguf_craft *c, const char *key, const char *v)
{
    gguf_craft_key(c, key, 8);
    gguf_craft_str(c, v);
}

void gguf_craft_arr_head(gguf_craft *c, uint32_t elem_type, uint64_t n)
{
    gguf_craft_u32(c, elem_type);
    gguf_craft_u64(c, n);
}

void gguf_craft_tensor_info(gguf_craft *c, const char *name, uint32_t n_dims,
                            const uint64_t *ne, uint32_t type, uint64_t offset)
{
    gguf_craft_str(c, name);
    gguf_craft_u32(c, n_dims);
    for (uint32_t d = 0; d < n_dims && d < 4; d++)
        gguf_craft_u64(c, ne[d]);
    gguf_craft_u32(c, type);
    gguf_craft_u64(c, offset);
}

/* ---------------------------------------------------------------- specs */

static const char *const DEFAULT_TOKENS[] = {"a", "bc", ""};

void gguf_craft_spec_default(gguf_craft_spec *s)
{
    memset(s, 0, sizeof *s);
    s->magic = GGUF_CRAFT_MAGIC;
    s->version = 3;
    s->n_tensors = GGUF_CRAFT_AUTO;
    s->n_kv = GGUF_CRAFT_AUTO;
    s->alignment = 32;
    s->data_len = GGUF_CRAFT_AUTO;
    s->kvs[0] = (gguf_craft_kv){.key = "general.architecture", .type = 8, .s = "craft"};
    s->kvs[1] = (gguf_craft_kv){.key = "general.alignment", .type = 4, .u = 32};
    s->kvs[2] = (gguf_craft_kv){.key = "tokenizer.ggml.tokens", .type = 9, .elem_type = 8,
                                .n = 3, .strs = DEFAULT_TOKENS, .n_strs = 3};
    s->kvs[3] = (gguf_craft_kv){.key = "craft.count", .type = 4, .u = 7};
    s->n_kvs = 4;
    s->tensors[0] = (gguf_craft_tensor){"a", 2, {8, 2, 1, 1}, QP_GGML_F32, GGUF_CRAFT_AUTO};
    s->tensors[1] = (gguf_craft_tensor){"b", 1, {64, 1, 1, 1}, QP_GGML_Q8_0, GGUF_CRAFT_AUTO};
    s->tensors[2] = (gguf_craft_tensor){"c", 3, {4, 3, 2, 1}, QP_GGML_F16, GGUF_CRAFT_AUTO};
    s->n_tens = 3;
}

uint64_t gguf_craft_tensor_nbytes(const gguf_craft_tensor *t)
{
    int ok = 0;
    uint64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims && d < 4; d++)
        if (__builtin_mul_overflow(rows, t->ne[d], &rows))
            return 0;
    uint64_t row = qp_ggml_row_bytes(t->type, t->ne[0], &ok), bytes;
    if (!ok || __builtin_mul_overflow(row, rows, &bytes))
        return 0;
    return bytes;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
    return a > 1 ? (v + a - 1) / a * a : v;
}

static void emit_value(gguf_craft *c, const gguf_craft_kv *kv)
{
    static const uint8_t sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (kv->type == 9) {
        gguf_craft_arr_head(c, kv->elem_type, kv->n);
        if (kv->strs)
            for (size_t i = 0; i < kv->n_strs; i++)
                gguf_craft_str(c, kv->strs[i]);
        gguf_craft_bytes(c, kv->raw, kv->raw ? kv->raw_len : 0);
        return;
    }
    if (kv->raw) {
        gguf_craft_bytes(c, kv->raw, kv->raw_len);
    } else if (kv->type == 8) {
        gguf_craft_str(c, kv->s ? kv->s : "");
    } else if (kv->type < 13) {
        for (int i = 0; i < sizes[kv->type]; i++)
            gguf_craft_u8(c, (uint8_t)(kv->u >> (8 * i)));
    }
}

void gguf_craft_build(gguf_craft *c, const gguf_craft_spec *s)
{
    size_t start = c->len;
    uint64_t offs[GGUF_CRAFT_MAX], end = 0, off = 0;
    for (size_t i = 0; i < s->n_tens; i++) {
        const gguf_craft_tensor *t = &s->tensors[i];
        offs[i] = t->offset;
        if (t->offset == GGUF_CRAFT_AUTO) {
            offs[i] = align_up(off, s->alignment);
            off = offs[i] + gguf_craft_tensor_nbytes(t);
        }
        uint64_t e = offs[i] + gguf_craft_tensor_nbytes(t);
        if (offs[i] < (uint64_t)1 << 40 && e > end)
            end = e;
    }
    gguf_craft_header(c, s->magic, s->version,
                      s->n_tensors == GGUF_CRAFT_AUTO ? s->n_tens : s->n_tensors,
                      s->n_kv == GGUF_CRAFT_AUTO ? s->n_kvs : s->n_kv);
    for (size_t i = 0; i < s->n_kvs; i++) {
        gguf_craft_key(c, s->kvs[i].key, s->kvs[i].type);
        emit_value(c, &s->kvs[i]);
    }
    for (size_t i = 0; i < s->n_tens; i++) {
        const gguf_craft_tensor *t = &s->tensors[i];
        gguf_craft_tensor_info(c, t->name, t->n_dims, t->ne, t->type, offs[i]);
    }
    /* Padding counts from the file start, as in GGUF. */
    if (s->alignment > 1 && (c->len - start) % s->alignment)
        gguf_craft_zeros(c, (size_t)(s->alignment - (c->len - start) % s->alignment));
    uint64_t data_len = s->data_len == GGUF_CRAFT_AUTO ? align_up(end, s->alignment)
                                                       : s->data_len;
    for (uint64_t i = 0; i < data_len; i++)
        gguf_craft_u8(c, (uint8_t)(i * 31 + 7));
}

void *gguf_craft_dup(const gguf_craft *c)
{
    void *p = malloc(c->len ? c->len : 1);
    if (p && c->len)
        memcpy(p, c->p, c->len);
    return p;
}

int gguf_craft_write_file(const gguf_craft *c, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = c->len ? fwrite(c->p, 1, c->len, f) : 0;
    return (fclose(f) == 0 && w == c->len) ? 0 : -1;
}
