/* fuzz_common.c - the fuzz target table and the error-record check every
 * target applies to a rejected input (see fuzz_targets.h). */
#include "support/fuzz_targets.h"

#include <stdlib.h>
#include <string.h>

const qp_fuzz_target qp_fuzz_targets[] = {
    {"st_header", qp_fuzz_st_header, "safetensors header JSON (qp_st_validate_header)"},
    {"st_index", qp_fuzz_st_index, "model.safetensors.index.json (qp_st_open_dir)"},
    {"gguf", qp_fuzz_gguf, "GGUF image (qp_gguf_open_memory + accessors + checksums)"},
    {"gguf_vocab", qp_fuzz_gguf_vocab, "GGUF tokenizer arrays -> qp_tokenizer_from_spec"},
    {"tok_spec", qp_fuzz_tok_spec, "tokenizer arrays as lines -> qp_tokenizer_from_spec"},
    {"hf_config", qp_fuzz_hf_config, "config.json (qp_hf_config_parse)"},
    {"tokenizer", qp_fuzz_tokenizer, "tokenizer.json (qp_hf_vocab_parse, qp_tokenizer_load_json)"},
    {"imatrix", qp_fuzz_imatrix, "importance matrix, GGUF or legacy .dat (qp_imatrix_read_memory)"},
};
const size_t qp_fuzz_n_targets = sizeof qp_fuzz_targets / sizeof qp_fuzz_targets[0];

const qp_fuzz_target *qp_fuzz_find(const char *name)
{
    for (size_t i = 0; i < qp_fuzz_n_targets; i++)
        if (strcmp(qp_fuzz_targets[i].name, name) == 0)
            return &qp_fuzz_targets[i];
    return NULL;
}

/* A rejected input must leave a usable one-line message: a status, the
 * file it is about, and a cause. Crashing here turns a silent or
 * anonymous error into a fuzzer finding. */
void qp_fuzz_check_err(const qp_err *err, qp_status st, const char *path)
{
    if (st == QP_OK)
        return;
    if (err->status != st || err->msg[0] == '\0')
        abort();
    if (path && strstr(err->path, path) == NULL)
        abort();
}
