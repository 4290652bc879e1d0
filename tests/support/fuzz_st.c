/* fuzz_st.c - fuzz targets for the safetensors reader: one header on its
 * own, and a sharded checkpoint driven by a hostile index. */
#include "support/fuzz_targets.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "support/st_craft.h"

#define ST_HEADER_NAME "fuzz/model.safetensors"

int qp_fuzz_st_header(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t data_size = 0;
    for (int i = 0; i < 8; i++)
        data_size |= (uint64_t)data[i] << (8 * i);
    qp_err err;
    qp_err_clear(&err);
    qp_status st = qp_st_validate_header((const char *)data + 8, size - 8, data_size, ST_HEADER_NAME, &err);
    qp_fuzz_check_err(&err, st, ST_HEADER_NAME);
    return st == QP_OK;
}

/* ------------------------------------------------------------ st_index */

/* Shards every index may name: the fixture checkpoints' own (linked, so
 * the fixture indexes are valid inputs) and small crafted ones, including
 * a duplicate of a tensor name and a truncated file. */
static char g_dir[PATH_MAX];
static char g_index[PATH_MAX + 64];

static void remove_dir(void)
{
    static const char *const names[] = {
        "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
        "model-00003-of-00003.safetensors", "a.safetensors", "b.safetensors",
        "dup.safetensors", "trunc.safetensors", "model.safetensors.index.json"};
    char p[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, names[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

static int link_fixture(const char *model, const char *file)
{
    char src[PATH_MAX], dst[PATH_MAX + 64];
    snprintf(src, sizeof src, "%s/models/%s/%s", QP_FIXTURES, model, file);
    snprintf(dst, sizeof dst, "%s/%s", g_dir, file);
    return symlink(src, dst);
}

static int make_dir(void)
{
    const char *base = getenv("QP_TEST_TMP");
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/qp-fuzz-index-XXXXXX", base);
    if (!mkdtemp(g_dir))
        return -1;
    atexit(remove_dir);
    snprintf(g_index, sizeof g_index, "%s/model.safetensors.index.json", g_dir);
    const char *t2[] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
    const char *t3[] = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                        "model-00003-of-00003.safetensors"};
    for (int i = 0; i < 2; i++)
        if (link_fixture("qwen3-tiny", t2[i]) != 0)
            return -1;
    for (int i = 0; i < 3; i++)
        if (link_fixture("qwen3-moe-tiny", t3[i]) != 0)
            return -1;
    st_craft_tensor a[] = {
        {.name = "x", .dtype = "BF16", .n_dims = 2, .shape = {4, 8}},
        {.name = "y", .dtype = "F32", .n_dims = 1, .shape = {8}},
    };
    st_craft_tensor b[] = {
        {.name = "z", .dtype = "F16", .n_dims = 3, .shape = {2, 3, 4}},
        {.name = "s", .dtype = "F8_E4M3", .n_dims = 0},
    };
    st_craft_tensor dup[] = {{.name = "x", .dtype = "I8", .n_dims = 1, .shape = {5}}};
    char p[PATH_MAX + 64];
    int rc = 0;
    snprintf(p, sizeof p, "%s/a.safetensors", g_dir);
    rc |= st_craft_write_file(p, a, 2);
    snprintf(p, sizeof p, "%s/b.safetensors", g_dir);
    rc |= st_craft_write_file(p, b, 2);
    snprintf(p, sizeof p, "%s/dup.safetensors", g_dir);
    rc |= st_craft_write_file(p, dup, 1);
    snprintf(p, sizeof p, "%s/trunc.safetensors", g_dir);
    rc |= st_craft_write_file(p, a, 2);
    rc |= st_craft_truncate(p, 60);
    return rc;
}

const char *qp_fuzz_st_index_dir(void);
const char *qp_fuzz_st_index_dir(void)
{
    static int state; /* 0 not made, 1 ready, -1 failed */
    if (state == 0)
        state = make_dir() == 0 ? 1 : -1;
    if (state < 0)
        abort(); /* the harness itself is broken: say so loudly */
    return g_dir;
}

int qp_fuzz_st_index(const uint8_t *data, size_t size)
{
    const char *dir = qp_fuzz_st_index_dir();
    FILE *f = fopen(g_index, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    qp_err err;
    qp_err_clear(&err);
    qp_st_model *m = NULL;
    qp_status st = qp_st_open_dir(dir, &m, &err);
    qp_fuzz_check_err(&err, st, dir);
    if (st == QP_OK) {
        /* Touch the start of every tensor through the read paths. */
        for (size_t i = 0; i < qp_st_count(m); i++) {
            const qp_st_tensor *t = qp_st_at(m, i);
            unsigned char raw[16];
            float f32[4];
            size_t n = t->nbytes < sizeof raw ? (size_t)t->nbytes : sizeof raw;
            if (qp_st_read_raw(m, t, 0, raw, n, &err) != QP_OK)
                abort(); /* validated at open, files unchanged: must read */
            uint64_t k = t->n_elems < 4 ? t->n_elems : 4;
            if (qp_st_dtype_is_float(t->dtype) && qp_st_read_f32(m, t, 0, k, f32, &err) != QP_OK)
                abort();
        }
    }
    qp_st_close(m);
    return st == QP_OK;
}
