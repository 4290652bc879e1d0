/* fuzz_seeds.c - seed corpora for the fuzz targets (see fuzz_targets.h):
 * the fixtures as they are, and crafted inputs that are valid in every
 * corner the fixtures do not show or wrong in exactly one way. */
#include "support/fuzz_targets.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "format/hf_vocab.h"
#include "support/gguf_craft.h"
#include "support/st_craft.h"

typedef struct {
    qp_fuzz_seed_fn emit;
    void *ctx;
    int failed;
} seeder;

static void *read_fixture(const char *rel, size_t *size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", QP_FIXTURES, rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            unsigned char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *size = n;
    return buf;
}

static void fixture_seed(seeder *s, const char *target, const char *name, const char *rel)
{
    size_t n;
    void *d = read_fixture(rel, &n);
    if (!d) {
        fprintf(stderr, "fuzz seeds: cannot read fixture %s\n", rel);
        s->failed = 1;
        return;
    }
    s->emit(s->ctx, target, name, d, n);
    free(d);
}

static void text_seed(seeder *s, const char *target, const char *name, const char *text)
{
    s->emit(s->ctx, target, name, text, strlen(text));
}

/* ------------------------------------------------------------ safetensors */

/* st_header input: [u64 LE data size][header JSON]. */
static void header_seed(seeder *s, const char *name, const char *json, size_t len, uint64_t data_size)
{
    unsigned char *b = malloc(len + 8);
    if (!b) {
        s->failed = 1;
        return;
    }
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(data_size >> (8 * i));
    memcpy(b + 8, json, len);
    s->emit(s->ctx, "st_header", name, b, len + 8);
    free(b);
}

/* The header of a fixture shard with the size of its data region. */
static void st_fixture_seed(seeder *s, const char *name, const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", QP_FIXTURES, rel);
    FILE *f = fopen(path, "rb");
    unsigned char pre[8];
    char *json = NULL;
    uint64_t hlen = 0;
    long fsize = -1;
    if (f && fread(pre, 1, 8, f) == 8) {
        for (int i = 0; i < 8; i++)
            hlen |= (uint64_t)pre[i] << (8 * i);
        if (hlen < (1u << 24) && (json = malloc(hlen + 1)) && fread(json, 1, hlen, f) == hlen &&
            fseek(f, 0, SEEK_END) == 0)
            fsize = ftell(f);
    }
    if (f)
        fclose(f);
    if (fsize < 0 || (uint64_t)fsize < 8 + hlen) {
        fprintf(stderr, "fuzz seeds: cannot read the header of %s\n", path);
        free(json);
        s->failed = 1;
        return;
    }
    header_seed(s, name, json, hlen, (uint64_t)fsize - 8 - hlen);
    free(json);
}

static void crafted_header(seeder *s, const char *name, const st_craft_tensor *t, size_t n, const char *meta)
{
    uint64_t ds = 0;
    char *h = st_craft_header(t, n, meta, &ds);
    if (!h) {
        s->failed = 1;
        return;
    }
    header_seed(s, name, h, strlen(h), ds);
    free(h);
}

static void st_seeds(seeder *s)
{
    st_fixture_seed(s, "valid-tiny-1", "models/qwen3-tiny/model-00001-of-00002.safetensors");
    st_fixture_seed(s, "valid-tiny-2", "models/qwen3-tiny/model-00002-of-00002.safetensors");
    st_fixture_seed(s, "valid-moe-3", "models/qwen3-moe-tiny/model-00003-of-00003.safetensors");
    st_fixture_seed(s, "valid-omni", "models/qwen3-omni-tiny-random/model.safetensors");

    static const char *const dtypes[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8",
                                         "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
    static const char *const names[] = {"t.f64", "t.f32", "t.f16", "t.bf16", "t.i64", "t.i32", "t.i16", "t.i8",
                                        "t.u64", "t.u32", "t.u16", "t.u8", "t.bool", "t.e4m3", "t.e5m2"};
    st_craft_tensor all[15];
    for (int i = 0; i < 15; i++)
        all[i] = (st_craft_tensor){.name = names[i], .dtype = dtypes[i], .n_dims = 2, .shape = {3, 5}};
    crafted_header(s, "valid-all-dtypes", all, 15, NULL);

    st_craft_tensor odd[] = {
        {.name = "scalar", .dtype = "F32", .n_dims = 0},
        {.name = "empty", .dtype = "BF16", .n_dims = 2, .shape = {0, 4}},
        {.name = "deep", .dtype = "U8", .n_dims = 8, .shape = {1, 2, 1, 2, 1, 2, 1, 2}},
        {.name = "unicode \xc3\xa9\\\"", .dtype = "I8", .n_dims = 1, .shape = {1}},
    };
    crafted_header(s, "valid-odd-shapes", odd, 4, "");
    crafted_header(s, "valid-metadata", odd, 1, "{\"format\":\"pt\",\"note\":\"x\",\"total\":\"3\"}");

    st_craft_tensor bad[] = {{.name = "w", .dtype = "F32", .n_dims = 2, .shape = {2, 2}}};
    bad[0].offsets_json = "[8, 24]";
    crafted_header(s, "bad-offsets-past", bad, 1, NULL);
    bad[0].offsets_json = "[0, 1.5]";
    crafted_header(s, "bad-offsets-fraction", bad, 1, NULL);
    bad[0].offsets_json = "[0, 9007199254740993]";
    crafted_header(s, "bad-offsets-huge", bad, 1, NULL);
    bad[0].offsets_json = NULL;
    bad[0].shape_json = "[4294967296, 4294967296, 16]";
    crafted_header(s, "bad-shape-overflow", bad, 1, NULL);
    bad[0].shape_json = "[-1, 4]";
    crafted_header(s, "bad-shape-negative", bad, 1, NULL);
    bad[0].shape_json = NULL;
    bad[0].dtype = "Q9";
    crafted_header(s, "bad-dtype", bad, 1, NULL);
    bad[0].dtype = "F32";
    bad[0].nbytes = 12;
    crafted_header(s, "bad-size-mismatch", bad, 1, NULL);
    st_craft_tensor two[] = {{.name = "w", .dtype = "F32", .n_dims = 1, .shape = {4}},
                             {.name = "v", .dtype = "F32", .n_dims = 1, .shape = {4}, .offsets_json = "[8, 24]"}};
    crafted_header(s, "bad-overlap", two, 2, NULL);
    two[1].name = "w";
    two[1].offsets_json = NULL;
    crafted_header(s, "bad-duplicate", two, 2, NULL);
    header_seed(s, "bad-truncated", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],", 33, 4);
    char deep[2100];
    memset(deep, '[', 2000);
    deep[2000] = '\0';
    header_seed(s, "bad-deep-nesting", deep, 2000, 0);
}

static void index_seeds(seeder *s)
{
    fixture_seed(s, "st_index", "valid-qwen3-tiny", "models/qwen3-tiny/model.safetensors.index.json");
    fixture_seed(s, "st_index", "valid-qwen3-moe-tiny", "models/qwen3-moe-tiny/model.safetensors.index.json");
    text_seed(s, "st_index", "valid-crafted",
              "{\"metadata\":{\"total_size\":100},\"weight_map\":{\"x\":\"a.safetensors\","
              "\"y\":\"a.safetensors\",\"z\":\"b.safetensors\",\"s\":\"b.safetensors\"}}");
    text_seed(s, "st_index", "bad-missing-shard",
              "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\",\"q\":\"c.safetensors\"}}");
    text_seed(s, "st_index", "bad-wrong-shard",
              "{\"weight_map\":{\"x\":\"b.safetensors\",\"y\":\"a.safetensors\",\"z\":\"b.safetensors\","
              "\"s\":\"b.safetensors\"}}");
    text_seed(s, "st_index", "bad-unlisted", "{\"weight_map\":{\"x\":\"a.safetensors\"}}");
    text_seed(s, "st_index", "bad-duplicate-across",
              "{\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"a.safetensors\",\"x \":\"dup.safetensors\"}}");
    text_seed(s, "st_index", "bad-truncated-shard",
              "{\"weight_map\":{\"x\":\"trunc.safetensors\",\"y\":\"trunc.safetensors\"}}");
    text_seed(s, "st_index", "bad-path", "{\"weight_map\":{\"x\":\"../a.safetensors\"}}");
    text_seed(s, "st_index", "bad-types", "{\"weight_map\":[\"a.safetensors\"]}");
    text_seed(s, "st_index", "bad-twice",
              "{\"weight_map\":{\"x\":\"a.safetensors\",\"x\":\"a.safetensors\",\"y\":\"a.safetensors\"}}");
}

/* ------------------------------------------------------------ GGUF */

static void gguf_seed(seeder *s, const char *target, const char *name, const gguf_craft_spec *spec)
{
    gguf_craft c;
    gguf_craft_init(&c);
    gguf_craft_build(&c, spec);
    s->emit(s->ctx, target, name, c.p, c.len);
    gguf_craft_free(&c);
}

static void gguf_seeds(seeder *s)
{
    gguf_craft_spec sp;
    gguf_craft_spec_default(&sp);
    gguf_seed(s, "gguf", "valid-default", &sp);
    sp.version = 2;
    gguf_seed(s, "gguf", "valid-v2", &sp);

    gguf_craft_spec_default(&sp);
    sp.kvs[1].u = 64;
    sp.alignment = 64;
    gguf_seed(s, "gguf", "valid-align64", &sp);

    /* Every value type, and arrays of arrays. */
    gguf_craft_spec_default(&sp);
    static const char *const keys[] = {"t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.f32",
                                       "t.bool", "t.u64", "t.i64", "t.f64"};
    static const uint32_t types[] = {0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 12};
    sp.n_kvs = 2;
    for (int i = 0; i < 11; i++)
        sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = keys[i], .type = types[i], .u = 0x3f800000u + (uint64_t)i};
    static const uint8_t f64arr[16] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40};
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "t.arr_f64", .type = 9, .elem_type = 12, .n = 2,
                                         .raw = f64arr, .raw_len = 16};
    gguf_craft nested;
    gguf_craft_init(&nested);
    gguf_craft_arr_head(&nested, 4, 2);
    gguf_craft_u32(&nested, 1);
    gguf_craft_u32(&nested, 2);
    gguf_craft_arr_head(&nested, 8, 1);
    gguf_craft_str(&nested, "inner");
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "t.nested", .type = 9, .elem_type = 9, .n = 2,
                                         .raw = nested.p, .raw_len = nested.len};
    gguf_seed(s, "gguf", "valid-all-types", &sp);
    gguf_craft_free(&nested);

    fixture_seed(s, "gguf", "valid-imatrix", "ggml-vectors/imatrix-calib.gguf");

    /* One field wrong each. */
    gguf_craft_spec_default(&sp);
    sp.magic = 0x46554746u;
    gguf_seed(s, "gguf", "bad-magic", &sp);
    gguf_craft_spec_default(&sp);
    sp.version = 4;
    gguf_seed(s, "gguf", "bad-version", &sp);
    gguf_craft_spec_default(&sp);
    sp.n_kv = 1ull << 60;
    gguf_seed(s, "gguf", "bad-n-kv", &sp);
    gguf_craft_spec_default(&sp);
    sp.n_tensors = 1ull << 62;
    gguf_seed(s, "gguf", "bad-n-tensors", &sp);
    gguf_craft_spec_default(&sp);
    sp.tensors[0].n_dims = 5;
    gguf_seed(s, "gguf", "bad-dims5", &sp);
    gguf_craft_spec_default(&sp);
    sp.tensors[1].ne[0] = 0;
    gguf_seed(s, "gguf", "bad-dim0", &sp);
    gguf_craft_spec_default(&sp);
    sp.tensors[2].type = 99;
    gguf_seed(s, "gguf", "bad-ggml-type", &sp);
    gguf_craft_spec_default(&sp);
    sp.tensors[2].offset = 1ull << 30;
    sp.data_len = 256;
    gguf_seed(s, "gguf", "bad-data-past-end", &sp);
    gguf_craft_spec_default(&sp);
    sp.tensors[1].offset = 36;
    gguf_seed(s, "gguf", "bad-misaligned", &sp);
    gguf_craft_spec_default(&sp);
    sp.kvs[1].u = 0;
    gguf_seed(s, "gguf", "bad-align0", &sp);
    sp.kvs[1].u = 48;
    gguf_seed(s, "gguf", "bad-align48", &sp);
    gguf_craft_spec_default(&sp);
    sp.kvs[2].n = 1ull << 61;
    gguf_seed(s, "gguf", "bad-array-len", &sp);
    gguf_craft_spec_default(&sp);
    sp.tensors[0].ne[1] = 1ull << 62;
    sp.tensors[0].ne[2] = 1ull << 62;
    sp.tensors[0].n_dims = 3;
    gguf_seed(s, "gguf", "bad-shape-overflow", &sp);
}

/* GPT-2's byte-to-text mapping: printable Latin-1 bytes stand for
 * themselves, the rest are moved to U+0100 and up, in byte order. */
static void byte_token(int b, char out[4])
{
    static int map[256];
    static int ready;
    if (!ready) {
        int n = 0;
        for (int i = 0; i < 256; i++) {
            int keep = (i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255);
            map[i] = keep ? i : 256 + n++;
        }
        ready = 1;
    }
    int cp = map[b];
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    }
}

/* A small byte-level BPE vocabulary: 256 byte tokens, a few merges (in
 * byte-level text: \xc4\xa0 is the space, \xc4\x8a the newline) and three
 * control tokens. */
typedef struct {
    int n_tok, n_mer;
    char tok[300][16];
    int type[300];
    char mer[32][40];
} mini_vocab;

static void mini_vocab_make(mini_vocab *v)
{
    static const char *const pairs[][2] = {
        {"h", "e"}, {"l", "l"}, {"ll", "o"}, {"\xc4\xa0", "w"}, {"o", "r"}, {"\xc4\xa0w", "or"},
        {"l", "d"}, {"\xc4\xa0", "\xc4\xa0"}, {"\xc4\xa0\xc4\xa0", "\xc4\xa0\xc4\xa0"}, {"1", "2"},
        {"\xc4\x8a", "\xc4\x8a"}, {"d", "e"}, {"de", "f"}, {"r", "e"}, {"re", "t"}, {"ret", "urn"},
        {"u", "r"}, {"ur", "n"}, {"'", "s"}};
    memset(v, 0, sizeof *v);
    for (int b = 0; b < 256; b++) {
        byte_token(b, v->tok[v->n_tok]);
        v->type[v->n_tok++] = QP_TOKEN_NORMAL;
    }
    /* "urn" must exist before "ret"+"urn": add merged tokens in pair order
     * but list merges after all tokens exist, so order only sets rank. */
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        snprintf(v->tok[v->n_tok], sizeof v->tok[0], "%s%s", pairs[i][0], pairs[i][1]);
        v->type[v->n_tok++] = QP_TOKEN_NORMAL;
        snprintf(v->mer[v->n_mer++], sizeof v->mer[0], "%s %s", pairs[i][0], pairs[i][1]);
    }
    static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 3; i++) {
        snprintf(v->tok[v->n_tok], sizeof v->tok[0], "%s", specials[i]);
        v->type[v->n_tok++] = QP_TOKEN_CONTROL;
    }
}

/* A GGUF carrying just a tokenizer (the gguf_vocab target's input). */
static void vocab_gguf_seed(seeder *s, const char *name, int64_t n_tok, const char *const *tok,
                            const int32_t *types, int64_t n_mer, const char *const *mer)
{
    gguf_craft_spec sp;
    gguf_craft_spec_default(&sp);
    sp.n_kvs = 0;
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "general.architecture", .type = 8, .s = "qwen3"};
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "tokenizer.ggml.model", .type = 8, .s = "gpt2"};
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "tokenizer.ggml.pre", .type = 8, .s = "qwen2"};
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "tokenizer.ggml.tokens", .type = 9, .elem_type = 8,
                                         .n = (uint64_t)n_tok, .strs = tok, .n_strs = (size_t)n_tok};
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "tokenizer.ggml.token_type", .type = 9, .elem_type = 5,
                                         .n = (uint64_t)n_tok, .raw = types,
                                         .raw_len = (size_t)n_tok * sizeof *types};
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "tokenizer.ggml.merges", .type = 9, .elem_type = 8,
                                         .n = (uint64_t)n_mer, .strs = mer, .n_strs = (size_t)n_mer};
    sp.kvs[sp.n_kvs++] = (gguf_craft_kv){.key = "tokenizer.ggml.eos_token_id", .type = 4,
                                         .u = (uint64_t)(n_tok - 1)};
    sp.n_tens = 1;
    gguf_seed(s, "gguf_vocab", name, &sp);
    gguf_seed(s, "gguf", name, &sp);
}

/* The tok_spec form of the same arrays (see fuzz_targets.h). Holes and
 * tokens with a newline cannot be written as lines: they become "?". */
static void tok_spec_seed(seeder *s, const char *name, int64_t n_tok, const char *const *tok,
                          const int32_t *types, int64_t n_mer, const char *const *mer)
{
    size_t cap = 16;
    for (int64_t i = 0; i < n_tok; i++)
        cap += strlen(tok[i]) + 3;
    for (int64_t i = 0; i < n_mer; i++)
        cap += strlen(mer[i]) + 1;
    char *b = malloc(cap), *p = b;
    if (!b) {
        s->failed = 1;
        return;
    }
    *p++ = 1; /* flags: NFC on, merges not ignored */
    for (int64_t i = 0; i < n_tok; i++) {
        int32_t ty = types ? types[i] : QP_TOKEN_NORMAL;
        if (ty == QP_TOKEN_CONTROL || ty == QP_TOKEN_USER_DEFINED || ty == QP_TOKEN_UNUSED)
            *p++ = (char)(ty == QP_TOKEN_CONTROL ? 1 : ty == QP_TOKEN_USER_DEFINED ? 2 : 5);
        const char *t = tok[i][0] && !strchr(tok[i], '\n') ? tok[i] : "?";
        p += sprintf(p, "%s\n", t);
    }
    *p++ = '\n';
    for (int64_t i = 0; i < n_mer; i++)
        p += sprintf(p, "%s%s", mer[i], i + 1 < n_mer ? "\n" : "");
    s->emit(s->ctx, "tok_spec", name, b, (size_t)(p - b));
    free(b);
}

static void gguf_vocab_seeds(seeder *s)
{
    static mini_vocab v;
    mini_vocab_make(&v);
    const char *tok[300], *mer[32];
    int32_t types[300];
    for (int i = 0; i < v.n_tok; i++) {
        tok[i] = v.tok[i];
        types[i] = v.type[i];
    }
    for (int i = 0; i < v.n_mer; i++)
        mer[i] = v.mer[i];
    vocab_gguf_seed(s, "valid-mini", v.n_tok, tok, types, v.n_mer, mer);
    tok_spec_seed(s, "valid-mini", v.n_tok, tok, types, v.n_mer, mer);
    mer[3] = "\xc4\xa0 zz"; /* a merge whose right side is no token */
    vocab_gguf_seed(s, "bad-merge", v.n_tok, tok, types, v.n_mer, mer);

    /* The fixtures' whole vocabulary. */
    qp_hf_vocab hv;
    qp_err err;
    char path[4096];
    snprintf(path, sizeof path, "%s/models/qwen3-tiny/tokenizer.json", QP_FIXTURES);
    if (qp_hf_vocab_load(path, &hv, &err) != QP_OK) {
        s->failed = 1;
        return;
    }
    const char **t = calloc((size_t)hv.n_tokens, sizeof *t);
    if (t) {
        for (int64_t i = 0; i < hv.n_tokens; i++)
            t[i] = hv.tokens[i] ? hv.tokens[i] : "";
        vocab_gguf_seed(s, "valid-fixture-vocab", hv.n_tokens, t, hv.token_type, hv.n_merges,
                        (const char *const *)hv.merges);
        tok_spec_seed(s, "valid-fixture-vocab", hv.n_tokens, t, hv.token_type, hv.n_merges,
                      (const char *const *)hv.merges);
        free(t);
    } else {
        s->failed = 1;
    }
    qp_hf_vocab_free(&hv);
}

/* ------------------------------------------------------------ JSON files */

static void config_seeds(seeder *s)
{
    fixture_seed(s, "hf_config", "valid-qwen3-tiny", "models/qwen3-tiny/config.json");
    fixture_seed(s, "hf_config", "valid-qwen3-moe-tiny", "models/qwen3-moe-tiny/config.json");
    fixture_seed(s, "hf_config", "valid-omni", "models/qwen3-omni-tiny-random/config.json");
    text_seed(s, "hf_config", "valid-t5-keys",
              "{\"architectures\":[\"Qwen3MoeForCausalLM\"],\"model_type\":\"qwen3_moe\",\"vocab_size\":8192,"
              "\"hidden_size\":64,\"num_hidden_layers\":4,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
              "\"head_dim\":32,\"intermediate_size\":128,\"num_local_experts\":4,\"num_experts_per_tok\":2,\"moe_intermediate_size\":64,"
              "\"mlp_only_layers\":[0,2],\"decoder_sparse_step\":1,\"norm_topk_prob\":true,"
              "\"rope_parameters\":{\"rope_type\":\"yarn\",\"rope_theta\":1000000.0,\"factor\":4.0,"
              "\"original_max_position_embeddings\":32768},\"dtype\":\"bfloat16\",\"eos_token_id\":[8189,8191],"
              "\"layer_types\":[\"full_attention\",\"full_attention\",\"full_attention\",\"full_attention\"],"
              "\"quantization_config\":{\"quant_method\":\"fp8\",\"weight_block_size\":[128,128]},"
              "\"some_new_key\":{\"a\":[1,2,3]}}");
    text_seed(s, "hf_config", "bad-string-number",
              "{\"architectures\":[\"Qwen3ForCausalLM\"],\"hidden_size\":\"64\"}");
    text_seed(s, "hf_config", "bad-truncated", "{\"architectures\":[\"Qwen3ForCausalLM\"],\"hidden_size\":6");
    text_seed(s, "hf_config", "bad-huge",
              "{\"architectures\":[\"Qwen3ForCausalLM\"],\"vocab_size\":1e300,\"hidden_size\":-4,"
              "\"num_hidden_layers\":1.5,\"num_attention_heads\":0}");
}

/* tokenizer.json text for the mini vocabulary. */
static char *mini_tokenizer_json(int merges_as_pairs, const char *pre_tokenizer)
{
    static mini_vocab v;
    mini_vocab_make(&v);
    cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *vocab = cJSON_CreateObject();
    cJSON *merges = cJSON_CreateArray(), *added = cJSON_CreateArray();
    for (int i = 0; i < v.n_tok; i++) {
        if (v.type[i] == QP_TOKEN_NORMAL) {
            cJSON_AddNumberToObject(vocab, v.tok[i], i);
            continue;
        }
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", i);
        cJSON_AddStringToObject(a, "content", v.tok[i]);
        cJSON_AddBoolToObject(a, "single_word", 0);
        cJSON_AddBoolToObject(a, "lstrip", 0);
        cJSON_AddBoolToObject(a, "rstrip", 0);
        cJSON_AddBoolToObject(a, "normalized", 0);
        cJSON_AddBoolToObject(a, "special", 1);
        cJSON_AddItemToArray(added, a);
    }
    for (int i = 0; i < v.n_mer; i++) {
        if (!merges_as_pairs) {
            cJSON_AddItemToArray(merges, cJSON_CreateString(v.mer[i]));
            continue;
        }
        char left[40];
        snprintf(left, sizeof left, "%s", v.mer[i]);
        char *sp = strchr(left, ' ');
        *sp = '\0';
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(left));
        cJSON_AddItemToArray(pair, cJSON_CreateString(sp + 1));
        cJSON_AddItemToArray(merges, pair);
    }
    cJSON_AddStringToObject(root, "version", "1.0");
    cJSON_AddItemToObject(root, "added_tokens", added);
    cJSON *norm = cJSON_CreateObject();
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON_AddItemToObject(root, "normalizer", norm);
    cJSON_AddItemToObject(root, "pre_tokenizer", cJSON_Parse(pre_tokenizer));
    cJSON *dec = cJSON_CreateObject();
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    cJSON_AddItemToObject(root, "decoder", dec);
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "ignore_merges", 0);
    cJSON_AddItemToObject(model, "vocab", vocab);
    cJSON_AddItemToObject(model, "merges", merges);
    cJSON_AddItemToObject(root, "model", model);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static void tokenizer_seeds(seeder *s)
{
    static const char qwen_pre[] =
        "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
        "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}"
        "\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\","
        "\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,"
        "\"use_regex\":false}]}";
    static const char gpt2_pre[] = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}";
    char *t = mini_tokenizer_json(1, qwen_pre);
    if (t)
        text_seed(s, "tokenizer", "valid-mini-pairs", t);
    free(t);
    t = mini_tokenizer_json(0, gpt2_pre);
    if (t)
        text_seed(s, "tokenizer", "valid-mini-strings-gpt2", t);
    free(t);
    fixture_seed(s, "tokenizer", "valid-fixture", "models/qwen3-tiny/tokenizer.json");
    text_seed(s, "tokenizer", "bad-empty-model", "{\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}");
    text_seed(s, "tokenizer", "bad-types",
              "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":\"0\"},\"merges\":[[\"a\"]]},\"added_tokens\":7}");
}

int qp_fuzz_seeds(qp_fuzz_seed_fn emit, void *ctx)
{
    seeder s = {emit, ctx, 0};
    st_seeds(&s);
    index_seeds(&s);
    gguf_seeds(&s);
    gguf_vocab_seeds(&s);
    config_seeds(&s);
    tokenizer_seeds(&s);
    if (qp_fuzz_imatrix_seeds(emit, ctx) != 0)
        s.failed = 1;
    return s.failed ? -1 : 0;
}
