/* meta.h - the key/value metadata of a converted file: llama.cpp's
 * architecture keys and tokenizer arrays (so llama.cpp loads the file
 * unchanged), and qpack's own provenance under `qpack.*`. */
#ifndef QP_META_H
#define QP_META_H

#include <stdint.h>

#include "common/qp_error.h"
#include "convert/plan.h"
#include "format/gguf.h"
#include "format/hf_vocab.h"

typedef struct {
    uint32_t file_type;       /* llama.cpp's general.file_type (32 = MOSTLY_BF16) */
    const char *recipe;       /* preset or type name, recorded as qpack.recipe */
} qp_meta_options;

/* Parameter counts as llama.cpp reports them for general.size_label. */
typedef struct {
    uint64_t total;
    uint64_t shared;          /* everything that is not a routed expert */
    uint64_t per_expert;      /* routed-expert parameters of one expert, all layers */
    int64_t n_expert;
} qp_param_count;

qp_param_count qp_meta_count_params(const qp_plan *plan);

/* "5.2M", "16x5.8M": llama.cpp's rounded notation. */
void qp_meta_size_label(const qp_param_count *pc, char *buf, size_t size);

/* "qwen3-moe-tiny" -> "Qwen3 Moe Tiny". */
void qp_meta_display_name(const char *dir, char *buf, size_t size);

/* general.*, <arch>.* and qpack.* keys (not the tokenizer). */
qp_status qp_meta_write_model(qp_gguf_writer *w, const qp_plan *plan, const char *hf_dir,
                              const qp_meta_options *opt, qp_err *err);

/* tokenizer.ggml.* keys from the checkpoint's tokenizer.json and
 * tokenizer_config.json, padded with [PAD<id>] up to the embedding rows. */
qp_status qp_meta_write_tokenizer(qp_gguf_writer *w, const char *hf_dir, const qp_hf_config *cfg,
                                  int64_t n_vocab_rows, qp_err *err);

/* All keys of a source GGUF except the old file type, qpack.* and
 * quantize.*, then the new general.file_type and qpack.version/recipe. */
qp_status qp_meta_copy_gguf(qp_gguf_writer *w, const qp_gguf *g, const qp_meta_options *opt, qp_err *err);

#endif
