/* st_craft.h - write synthetic safetensors files and checkpoint directories
 * for tests and fuzz seeds, including deliberately malformed ones.
 *
 * Three levels, use the simplest that does the job:
 *
 * 1. From tensor specs (valid by default, data laid out back to back):
 *        st_craft_tensor t[] = {
 *            {.name = "w", .dtype = "BF16", .n_dims = 2, .shape = {4, 8}},
 *            {.name = "b", .dtype = "F32", .n_dims = 1, .shape = {8}, .values = my_floats},
 *        };
 *        st_craft_write_file(path, t, 2);
 *    Any field can be made wrong: .dtype = "Q9" (unknown), .nbytes = 3
 *    (size mismatch), or raw JSON text replacing a computed field:
 *    .shape_json = "[1.5]", .offsets_json = "[0, 9007199254740993]",
 *    .entry_json = "42" (the whole entry). Data bytes: .raw if given, else
 *    .values converted to the dtype (F32/F16/BF16/F64), else a fixed
 *    pattern of small finite numbers (float dtypes) or bytes (others).
 *
 * 2. From a literal header: st_craft_write_json(path, "{...}", data_size)
 *    writes exactly that header after its 8-byte length and then data_size
 *    zero bytes (a sparse extension, so data_size may be many GB).
 *
 * 3. Byte surgery on a written file: st_craft_set_header_len (overwrite
 *    the length prefix), st_craft_patch (overwrite bytes), st_craft_truncate.
 *
 * Checkpoint directories: st_craft_write_sharded writes
 * model-0000i-of-0000N.safetensors files plus model.safetensors.index.json;
 * st_craft_write_index_json writes an arbitrary index.
 *
 * All functions return 0 on success and -1 on failure (errno set by the
 * failing call); they never abort, so fuzz-seed generators can use them. */
#ifndef QP_ST_CRAFT_H
#define QP_ST_CRAFT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;
    const char *dtype; /* safetensors spelling ("BF16"); any string is written */
    int n_dims;        /* 0..8; more needs .shape_json */
    int64_t shape[8];
    /* Optional data source (first non-NULL wins; else a fixed pattern). */
    const void *raw;      /* exactly the tensor's byte size */
    const float *values;  /* n_elems floats, converted to F32/F16/BF16/F64 */
    /* Optional overrides. */
    uint64_t nbytes;          /* if non-zero: the data size written and put in data_offsets */
    const char *dtype_json;   /* raw JSON replacing "dtype"'s value */
    const char *shape_json;   /* raw JSON replacing "shape"'s value */
    const char *offsets_json; /* raw JSON replacing "data_offsets"'s value */
    const char *entry_json;   /* raw JSON replacing the whole entry object */
} st_craft_tensor;

/* Byte size of one element of a safetensors dtype name; 0 if unknown. */
size_t st_craft_dtype_size(const char *dtype);

/* The header JSON for `t[0..n)` with data laid out back to back in array
 * order. metadata_json: raw JSON for "__metadata__" (NULL: {"format":"pt"},
 * "": no __metadata__ key). Returns a malloc'ed string; *data_size gets the
 * data region size. NULL on failure. */
char *st_craft_header(const st_craft_tensor *t, size_t n, const char *metadata_json, uint64_t *data_size);

/* Write a complete file from specs (metadata {"format":"pt"}). */
int st_craft_write_file(const char *path, const st_craft_tensor *t, size_t n);
/* Same with explicit metadata (see st_craft_header). */
int st_craft_write_file_meta(const char *path, const st_craft_tensor *t, size_t n, const char *metadata_json);

/* Write header text `json` (exact bytes, strlen(json)) and data_size zero
 * bytes. */
int st_craft_write_json(const char *path, const char *json, uint64_t data_size);
/* Same with an explicit header length (json need not be NUL-terminated). */
int st_craft_write_json_n(const char *path, const char *json, size_t json_len, uint64_t data_size);

/* Byte surgery on an existing file. */
int st_craft_set_header_len(const char *path, uint64_t len);
int st_craft_patch(const char *path, uint64_t offset, const void *bytes, size_t n);
int st_craft_truncate(const char *path, uint64_t size);

/* Write `n_shards` shard files into `dir` (which must exist) named
 * model-%05d-of-%05d.safetensors (1-based), tensor i going to shard
 * shard_of[i] (0-based), and an index mapping every tensor to its shard. */
int st_craft_write_sharded(const char *dir, const st_craft_tensor *t, size_t n, const int *shard_of,
                           int n_shards);
/* The shard file name st_craft_write_sharded uses (static buffer). */
const char *st_craft_shard_name(int shard, int n_shards);

/* Write `dir`/model.safetensors.index.json with this exact text. */
int st_craft_write_index_json(const char *dir, const char *json);

#endif
