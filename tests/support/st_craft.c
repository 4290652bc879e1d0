/* st_craft.c - synthetic safetensors files for tests (see st_craft.h). */
#include "support/st_craft.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/qp_half.h"

/* Refuse to materialise more than this per tensor: tests stay small. */
#define CRAFT_MAX_TENSOR_BYTES ((uint64_t)256 << 20)

static const struct {
    const char *name;
    size_t size;
} DTYPES[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
    {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

size_t st_craft_dtype_size(const char *dtype)
{
    if (!dtype)
        return 0;
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(dtype, DTYPES[i].name) == 0)
            return DTYPES[i].size;
    return 0;
}

static uint64_t n_elems(const st_craft_tensor *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->n_dims && i < 8; i++)
        if (t->shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)t->shape[i], &n))
            return UINT64_MAX;
    return n;
}

/* Bytes of data this tensor occupies in the file. */
static uint64_t data_bytes(const st_craft_tensor *t)
{
    if (t->nbytes)
        return t->nbytes;
    uint64_t n = n_elems(t), b;
    if (n == UINT64_MAX || __builtin_mul_overflow(n, (uint64_t)st_craft_dtype_size(t->dtype), &b))
        return 0; /* not representable: the caller overrides offsets */
    return b;
}

static void put_f32(const char *dtype, unsigned char *dst, size_t i, float v)
{
    if (strcmp(dtype, "F32") == 0) {
        memcpy(dst + 4 * i, &v, 4);
    } else if (strcmp(dtype, "F64") == 0) {
        double d = v;
        memcpy(dst + 8 * i, &d, 8);
    } else if (strcmp(dtype, "F16") == 0 || strcmp(dtype, "BF16") == 0) {
        uint16_t h = dtype[0] == 'F' ? qp_f32_to_f16(v) : qp_f32_to_bf16(v);
        dst[2 * i] = (unsigned char)(h & 0xff);
        dst[2 * i + 1] = (unsigned char)(h >> 8);
    }
}

/* The tensor's data bytes, malloc'ed, exactly data_bytes(t) long. */
static unsigned char *make_data(const st_craft_tensor *t, uint64_t nb)
{
    if (nb > CRAFT_MAX_TENSOR_BYTES) {
        errno = EFBIG;
        return NULL;
    }
    unsigned char *d = calloc(1, nb ? (size_t)nb : 1);
    if (!d)
        return NULL;
    if (t->raw) {
        memcpy(d, t->raw, (size_t)nb);
        return d;
    }
    const size_t es = st_craft_dtype_size(t->dtype);
    const int is_float = t->dtype && (!strcmp(t->dtype, "F32") || !strcmp(t->dtype, "F64") ||
                                      !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16"));
    if (t->values && !is_float) {
        free(d);
        errno = EINVAL;
        return NULL;
    }
    if (is_float) {
        uint64_t n = nb / es, ne = n_elems(t);
        for (uint64_t i = 0; i < n; i++) {
            /* Pattern: multiples of 1/16 in [-0.5, 0.5], exact in every dtype. */
            float v = t->values && i < ne ? t->values[i] : (float)((int)((i * 7) % 17) - 8) / 16.0f;
            put_f32(t->dtype, d, (size_t)i, v);
        }
        return d;
    }
    for (uint64_t i = 0; i < nb; i++) {
        if (t->dtype && !strcmp(t->dtype, "F8_E4M3"))
            d[i] = (unsigned char)((i * 7) % 0x70); /* exponent < 14: never NaN */
        else if (t->dtype && !strcmp(t->dtype, "F8_E5M2"))
            d[i] = (unsigned char)((i * 7) % 0x78); /* exponent < 30: finite */
        else if (t->dtype && !strcmp(t->dtype, "BOOL"))
            d[i] = (unsigned char)(i % 3 == 0);
        else
            d[i] = (unsigned char)(i * 31 + 7);
    }
    return d;
}

static cJSON *raw_u64(uint64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(b);
}

static cJSON *make_entry(const st_craft_tensor *t, uint64_t start, uint64_t end)
{
    if (t->entry_json)
        return cJSON_CreateRaw(t->entry_json);
    cJSON *e = cJSON_CreateObject();
    if (!e)
        return NULL;
    cJSON_AddItemToObject(e, "dtype", t->dtype_json ? cJSON_CreateRaw(t->dtype_json) : cJSON_CreateString(t->dtype ? t->dtype : ""));
    cJSON *shape;
    if (t->shape_json) {
        shape = cJSON_CreateRaw(t->shape_json);
    } else {
        shape = cJSON_CreateArray();
        for (int i = 0; i < t->n_dims && i < 8; i++) {
            char b[32];
            snprintf(b, sizeof b, "%lld", (long long)t->shape[i]);
            cJSON_AddItemToArray(shape, cJSON_CreateRaw(b));
        }
    }
    cJSON_AddItemToObject(e, "shape", shape);
    cJSON *off;
    if (t->offsets_json) {
        off = cJSON_CreateRaw(t->offsets_json);
    } else {
        off = cJSON_CreateArray();
        cJSON_AddItemToArray(off, raw_u64(start));
        cJSON_AddItemToArray(off, raw_u64(end));
    }
    cJSON_AddItemToObject(e, "data_offsets", off);
    return e;
}

char *st_craft_header(const st_craft_tensor *t, size_t n, const char *metadata_json, uint64_t *data_size)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    if (!metadata_json)
        metadata_json = "{\"format\":\"pt\"}";
    if (metadata_json[0])
        cJSON_AddItemToObject(root, "__metadata__", cJSON_CreateRaw(metadata_json));
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t nb = data_bytes(&t[i]);
        /* AddItemToObject (not ...CS) copies the key; duplicates are kept. */
        cJSON_AddItemToObject(root, t[i].name ? t[i].name : "", make_entry(&t[i], off, off + nb));
        off += nb;
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (s && data_size)
        *data_size = off;
    return s;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int write_prefix(int fd, uint64_t len)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(len >> (8 * i));
    return write_all(fd, b, 8);
}

int st_craft_write_file_meta(const char *path, const st_craft_tensor *t, size_t n, const char *metadata_json)
{
    uint64_t data_size = 0;
    char *json = st_craft_header(t, n, metadata_json, &data_size);
    if (!json)
        return -1;
    /* Pad with spaces to a multiple of 8, as the reference writer does. */
    size_t len = strlen(json), padded = (len + 7) & ~(size_t)7;
    char *hdr = malloc(padded);
    int fd = -1, rc = -1;
    if (!hdr)
        goto out;
    memcpy(hdr, json, len);
    memset(hdr + len, ' ', padded - len);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_prefix(fd, padded) != 0 || write_all(fd, hdr, padded) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        uint64_t nb = data_bytes(&t[i]);
        unsigned char *d = make_data(&t[i], nb);
        if (!d)
            goto out;
        int w = write_all(fd, d, (size_t)nb);
        free(d);
        if (w != 0)
            goto out;
    }
    rc = 0;
out:
    if (fd >= 0 && close(fd) != 0)
        rc = -1;
    free(hdr);
    free(json);
    return rc;
}

int st_craft_write_file(const char *path, const st_craft_tensor *t, size_t n)
{
    return st_craft_write_file_meta(path, t, n, NULL);
}

int st_craft_write_json_n(const char *path, const char *json, size_t json_len, uint64_t data_size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = -1;
    if (write_prefix(fd, json_len) == 0 && write_all(fd, json, json_len) == 0 &&
        ftruncate(fd, (off_t)(8 + json_len + data_size)) == 0) /* sparse zeros */
        rc = 0;
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

int st_craft_write_json(const char *path, const char *json, uint64_t data_size)
{
    return st_craft_write_json_n(path, json, strlen(json), data_size);
}

int st_craft_patch(const char *path, uint64_t offset, const void *bytes, size_t n)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = 0;
    const unsigned char *p = bytes;
    while (n && rc == 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)offset);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -1;
        else {
            p += w;
            n -= (size_t)w;
            offset += (uint64_t)w;
        }
    }
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

int st_craft_set_header_len(const char *path, uint64_t len)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(len >> (8 * i));
    return st_craft_patch(path, 0, b, 8);
}

int st_craft_truncate(const char *path, uint64_t size)
{
    return truncate(path, (off_t)size);
}

const char *st_craft_shard_name(int shard, int n_shards)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "model-%05d-of-%05d.safetensors", shard + 1, n_shards);
    return buf;
}

int st_craft_write_index_json(const char *dir, const char *json)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = strlen(json);
    int rc = fwrite(json, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int st_craft_write_sharded(const char *dir, const st_craft_tensor *t, size_t n, const int *shard_of,
                           int n_shards)
{
    st_craft_tensor *sub = malloc((n ? n : 1) * sizeof *sub);
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject(), *wm = cJSON_CreateObject();
    int rc = -1;
    if (!sub || !root || !meta || !wm) {
        cJSON_Delete(meta);
        cJSON_Delete(wm);
        goto out;
    }
    cJSON_AddItemToObject(root, "metadata", meta);
    cJSON_AddItemToObject(root, "weight_map", wm);
    uint64_t total = 0;
    for (int s = 0; s < n_shards; s++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (shard_of[i] != s)
                continue;
            sub[k++] = t[i];
            total += data_bytes(&t[i]);
            cJSON_AddItemToObject(wm, t[i].name, cJSON_CreateString(st_craft_shard_name(s, n_shards)));
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, st_craft_shard_name(s, n_shards));
        if (st_craft_write_file(path, sub, k) != 0)
            goto out;
    }
    cJSON_AddItemToObject(meta, "total_size", raw_u64(total));
    char *json = cJSON_Print(root);
    if (json) {
        rc = st_craft_write_index_json(dir, json);
        free(json);
    }
out:
    cJSON_Delete(root);
    free(sub);
    return rc;
}
