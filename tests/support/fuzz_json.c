/* fuzz_json.c - fuzz targets for the JSON files of a Hugging Face
 * checkpoint: config.json and tokenizer.json. */
#include "support/fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "format/hf_config.h"
#include "format/hf_vocab.h"
#include "runtime-lite/tokenizer.h"

#define CONFIG_NAME "fuzz/config.json"
#define TOKENIZER_NAME "fuzz/tokenizer.json"

void qp_fuzz_exercise_tokenizer(const qp_tokenizer *t, const char *name);

int qp_fuzz_hf_config(const uint8_t *data, size_t size)
{
    static qp_hf_config cfg; /* ~3 KB; static keeps the fuzzer's stack small */
    qp_err err;
    qp_err_clear(&err);
    memset(&cfg, 0, sizeof cfg);
    qp_status st = qp_hf_config_parse((const char *)data, size, CONFIG_NAME, &cfg, &err);
    qp_fuzz_check_err(&err, st, CONFIG_NAME);
    if (st == QP_OK) {
        /* Accepted configs are usable: strings terminated, counts sane. */
        if (!memchr(cfg.architecture_name, '\0', sizeof cfg.architecture_name) ||
            !memchr(cfg.model_type, '\0', sizeof cfg.model_type) ||
            !memchr(cfg.unknown_keys, '\0', sizeof cfg.unknown_keys) ||
            cfg.n_mlp_only_layers < 0 ||
            cfg.n_mlp_only_layers > (int64_t)(sizeof cfg.mlp_only_layers / sizeof cfg.mlp_only_layers[0]))
            abort();
        (void)qp_arch_name(cfg.arch);
    }
    return st == QP_OK;
}

/* The whole-file loader takes a path: hand it an in-memory file. */
static int memfile(const uint8_t *data, size_t size, char *path, size_t path_size)
{
    int fd = memfd_create("tokenizer.json", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    snprintf(path, path_size, "/proc/self/fd/%d", fd);
    return fd;
}

int qp_fuzz_tokenizer(const uint8_t *data, size_t size)
{
    qp_err err;
    qp_err_clear(&err);
    qp_hf_vocab v;
    memset(&v, 0, sizeof v);
    qp_status st = qp_hf_vocab_parse((const char *)data, size, TOKENIZER_NAME, &v, &err);
    qp_fuzz_check_err(&err, st, TOKENIZER_NAME);
    if (st == QP_OK) {
        if (v.n_tokens < 0 || v.n_merges < 0 || v.n_added < 0)
            abort();
        for (int64_t i = 0; i < v.n_added; i++)
            if (v.added_ids[i] < 0 || v.added_ids[i] >= v.n_tokens)
                abort();
        qp_tokenizer *t = NULL;
        qp_err_clear(&err);
        qp_status ts = qp_tokenizer_from_hf_vocab(&v, NULL, TOKENIZER_NAME, &t, &err);
        qp_fuzz_check_err(&err, ts, TOKENIZER_NAME);
        if (ts == QP_OK)
            qp_fuzz_exercise_tokenizer(t, TOKENIZER_NAME);
        qp_tokenizer_free(t);
    }
    qp_hf_vocab_free(&v);

    /* The loader reads the regex and options from the file as well. */
    char path[64];
    int fd = memfile(data, size, path, sizeof path);
    qp_tokenizer *t = NULL;
    qp_err_clear(&err);
    qp_status ls = qp_tokenizer_load_json(path, &t, &err);
    qp_fuzz_check_err(&err, ls, path);
    if (ls == QP_OK)
        qp_fuzz_exercise_tokenizer(t, path);
    qp_tokenizer_free(t);
    close(fd);
    return st == QP_OK;
}
