/* gguf_craft.h - build GGUF byte images field by field, with any field set
 * to any (wrong) value, for malformed-file tests and fuzz seeds.
 *
 * Two levels: raw emitters (gguf_craft_u32, gguf_craft_str_len, ...) that
 * write exactly what they are told, and gguf_craft_build(), which emits a
 * whole file from a gguf_craft_spec whose every count, length, type, dim and
 * offset can be overridden. gguf_craft_spec_default() gives a small valid
 * file to start from. Nothing here validates: that is the reader's job. */
#ifndef GGUF_CRAFT_H
#define GGUF_CRAFT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *p;
    size_t len, cap;
} gguf_craft;

void gguf_craft_init(gguf_craft *c);
void gguf_craft_free(gguf_craft *c);

/* Raw emitters (little-endian). Allocation failure aborts the test process. */
void gguf_craft_bytes(gguf_craft *c, const void *p, size_t n);
void gguf_craft_zeros(gguf_craft *c, size_t n);
void gguf_craft_u8(gguf_craft *c, uint8_t v);
void gguf_craft_u16(gguf_craft *c, uint16_t v);
void gguf_craft_u32(gguf_craft *c, uint32_t v);
void gguf_craft_u64(gguf_craft *c, uint64_t v);
void gguf_craft_f32(gguf_craft *c, float v);
void gguf_craft_f64(gguf_craft *c, double v);
void gguf_craft_pad(gguf_craft *c, uint64_t align); /* zeros up to a multiple of align */
size_t gguf_craft_pos(const gguf_craft *c);
void gguf_craft_patch_u32(gguf_craft *c, size_t at, uint32_t v);
void gguf_craft_patch_u64(gguf_craft *c, size_t at, uint64_t v);
void gguf_craft_truncate(gguf_craft *c, size_t len);

/* GGUF pieces. */
void gguf_craft_str(gguf_craft *c, const char *s); /* u64 strlen + bytes */
/* A string whose length field says `claimed` but only n bytes follow. */
void gguf_craft_str_len(gguf_craft *c, uint64_t claimed, const void *bytes, size_t n);
void gguf_craft_header(gguf_craft *c, uint32_t magic, uint32_t version, uint64_t n_tensors,
                       uint64_t n_kv);
void gguf_craft_key(gguf_craft *c, const char *key, uint32_t vtype); /* key + value type */
void gguf_craft_kv_u32(gguf_craft *c, const char *key, uint32_t v);
void gguf_craft_kv_u64(gguf_craft *c, const char *key, uint64_t v);
void gguf_craft_kv_str(gguf_craft *c, const char *key, const char *v);
void gguf_craft_arr_head(gguf_craft *c, uint32_t elem_type, uint64_t n); /* after the key */
void gguf_craft_tensor_info(gguf_craft *c, const char *name, uint32_t n_dims,
                            const uint64_t *ne, uint32_t type, uint64_t offset);

#define GGUF_CRAFT_MAGIC 0x46554747u
#define GGUF_CRAFT_AUTO UINT64_MAX /* "compute the right value" */
#define GGUF_CRAFT_MAX 16

typedef struct {
    const char *key;
    uint32_t type;            /* value type as written */
    uint64_t u;               /* scalar bits (numeric/bool types), little-endian */
    const char *s;            /* STRING value */
    uint32_t elem_type;       /* ARRAY: element type as written */
    uint64_t n;               /* ARRAY: length as written */
    const char *const *strs;  /* ARRAY: n_strs strings emitted as elements, else raw */
    size_t n_strs;
    const void *raw;          /* bytes emitted as the value (after type, or after the
                                 array head); overrides u/s */
    size_t raw_len;
} gguf_craft_kv;

typedef struct {
    const char *name;
    uint32_t n_dims;          /* written as-is; ne[0..min(n_dims,4)) are emitted */
    uint64_t ne[4];
    uint32_t type;
    uint64_t offset;          /* GGUF_CRAFT_AUTO: next aligned offset */
} gguf_craft_tensor;

typedef struct {
    uint32_t magic, version;
    uint64_t n_tensors, n_kv; /* GGUF_CRAFT_AUTO: the real counts */
    gguf_craft_kv kvs[GGUF_CRAFT_MAX];
    size_t n_kvs;
    gguf_craft_tensor tensors[GGUF_CRAFT_MAX];
    size_t n_tens;
    uint64_t alignment;       /* used for auto offsets and the data padding */
    uint64_t data_len;        /* bytes after the padded header; AUTO: up to the end
                                 of the last tensor, padded to the alignment */
} gguf_craft_spec;

/* A valid v3 file: general.architecture 'craft', general.alignment 32,
 * tokenizer.ggml.tokens ["a","bc",""], a UINT32; tensors "a" F32 [8,2],
 * "b" Q8_0 [64], "c" F16 [4,3,2]. */
void gguf_craft_spec_default(gguf_craft_spec *s);
/* Emit the whole file described by s into c (appends). */
void gguf_craft_build(gguf_craft *c, const gguf_craft_spec *s);
/* Bytes of a tensor per the ggml type table, 0 when not computable. */
uint64_t gguf_craft_tensor_nbytes(const gguf_craft_tensor *t);

/* Copy into an exactly sized heap block (so ASan sees any over-read). */
void *gguf_craft_dup(const gguf_craft *c);
int gguf_craft_write_file(const gguf_craft *c, const char *path);

#endif
