/* fuzz_targets.h - the bodies of qpack's fuzz targets and their seed
 * corpora, shared by the libFuzzer executables (tests/fuzz/, clang only)
 * and by the plain replay test (tests/fuzz_replay/), which runs every seed
 * and every saved regression input through the same code in the normal
 * build.
 *
 * A target never crashes on any input. It returns 1 when the parser
 * accepted the input, 0 when it rejected it; on rejection it checks that the
 * error record names the file and says what is wrong, and abort()s if not
 * (so the fuzzers hunt bad error messages as well as memory bugs). */
#ifndef QP_FUZZ_TARGETS_H
#define QP_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

typedef int (*qp_fuzz_fn)(const uint8_t *data, size_t size);

typedef struct {
    const char *name; /* also the directory name under tests/fuzz/regressions/ */
    qp_fuzz_fn run;
    const char *what; /* one line for docs and --help */
} qp_fuzz_target;

/* st_header:  [u64 LE data-region size][header JSON] -> qp_st_validate_header
 * st_index:   model.safetensors.index.json text -> qp_st_open_dir over a
 *             scratch directory holding the fixture shards and crafted ones
 * gguf:       a GGUF image -> qp_gguf_open_memory, then every accessor and
 *             the checksum check
 * gguf_vocab: a GGUF image -> tokenizer.ggml.* arrays -> qp_tokenizer_from_spec,
 *             encode + decode
 * tok_spec:   a flags byte, tokens, an empty line, merges (one per line; a
 *             token line may start with \x01 control, \x02 user-defined,
 *             \x05 unused) ->
 *             qp_tokenizer_from_spec, encode + decode
 * hf_config:  config.json text -> qp_hf_config_parse
 * tokenizer:  tokenizer.json text -> qp_hf_vocab_parse and
 *             qp_tokenizer_load_json, encode + decode
 * imatrix:    an importance-matrix file, GGUF or legacy .dat ->
 *             qp_imatrix_read_memory, every accessor, merge */
extern const qp_fuzz_target qp_fuzz_targets[];
extern const size_t qp_fuzz_n_targets;
const qp_fuzz_target *qp_fuzz_find(const char *name); /* NULL if unknown */

int qp_fuzz_st_header(const uint8_t *data, size_t size);
int qp_fuzz_st_index(const uint8_t *data, size_t size);
int qp_fuzz_gguf(const uint8_t *data, size_t size);
int qp_fuzz_gguf_vocab(const uint8_t *data, size_t size);
int qp_fuzz_tok_spec(const uint8_t *data, size_t size);
int qp_fuzz_hf_config(const uint8_t *data, size_t size);
int qp_fuzz_tokenizer(const uint8_t *data, size_t size);
int qp_fuzz_imatrix(const uint8_t *data, size_t size);

/* Seed corpora: calls `emit` once per seed. Names starting with "valid-"
 * are inputs the target must accept. Seeds come from the fixtures
 * (QP_FIXTURES) and from the crafting helpers. Returns 0, or -1 when a
 * fixture could not be read. */
typedef void (*qp_fuzz_seed_fn)(void *ctx, const char *target, const char *name, const void *data,
                                size_t size);
int qp_fuzz_seeds(qp_fuzz_seed_fn emit, void *ctx);
int qp_fuzz_imatrix_seeds(qp_fuzz_seed_fn emit, void *ctx); /* part of qp_fuzz_seeds */

/* Internal to the targets: abort() unless a failed call left an error
 * record that names `path` and carries a message. */
void qp_fuzz_check_err(const qp_err *err, qp_status st, const char *path);

#endif
