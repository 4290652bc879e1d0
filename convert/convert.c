/* convert.c - the streaming conversion pipeline (see convert.h). */
#include "convert/convert.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/qp_ggml_types.h"
#include "common/qp_half.h"
#include "common/qp_threads.h"
#include "convert/meta.h"
#include "convert/split.h"
#include "format/gguf.h"
#include "quant/qtype.h"

/* Rows per batch target: about 4 M elements (16 MB of f32) per thread. */
#define BATCH_ELEMS (1 << 22)

uint32_t qp_convert_type_of(const qp_convert_options *opt, const qp_plan *plan, int64_t i)
{
    if (opt->choose_type)
        return opt->choose_type(opt->choose_ctx, plan, i);
    const qp_plan_tensor *t = qp_plan_at(plan, i);
    return t->keep_f32 ? QP_GGML_F32 : opt->default_type;
}

typedef struct {
    const qp_plan *plan;
    const qp_convert_options *opt;
    qp_gguf_writer *w;
    int64_t plan_idx, gguf_idx;
    uint32_t type;
    int raw_copy;              /* output bytes == source bytes */
    int64_t rows_per_batch, n_batches;
    uint64_t out_row_bytes, src_row_bytes;
    atomic_int failed;
    qp_err first_err;          /* filled by the first failing thread */
    atomic_flag err_taken;
    atomic_uint_fast64_t bytes_done; /* source bytes done, whole run */
    uint64_t bytes_total;
} tensor_job;

static void record_failure(tensor_job *j, const qp_err *e)
{
    if (!atomic_flag_test_and_set(&j->err_taken))
        j->first_err = *e;
    atomic_store(&j->failed, 1);
}

static void convert_rows_to(uint32_t type, const qp_qtype *qt, const float *src, void *dst, int64_t n_rows,
                            int64_t row_len, uint64_t out_row_bytes, const float *imp)
{
    for (int64_t r = 0; r < n_rows; r++) {
        const float *x = src + r * row_len;
        char *y = (char *)dst + (uint64_t)r * out_row_bytes;
        switch (type) {
        case QP_GGML_F32:
            memcpy(y, x, (size_t)row_len * sizeof(float));
            break;
        case QP_GGML_F16:
            for (int64_t c = 0; c < row_len; c++)
                ((uint16_t *)y)[c] = qp_f32_to_f16(x[c]);
            break;
        case QP_GGML_BF16:
            for (int64_t c = 0; c < row_len; c++)
                ((uint16_t *)y)[c] = qp_f32_to_bf16(x[c]);
            break;
        default:
            qt->quantize_row(x, y, row_len, imp);
            break;
        }
    }
}

static void run_batches(void *ctx, int64_t b0, int64_t b1, int tid)
{
    tensor_job *j = ctx;
    const qp_plan_tensor *t = qp_plan_at(j->plan, j->plan_idx);
    const qp_qtype *qt = qp_qtype_get(j->type);
    size_t src_bytes = (size_t)j->rows_per_batch * (j->raw_copy ? j->src_row_bytes : (uint64_t)t->row_len * 4);
    size_t out_bytes = (size_t)j->rows_per_batch * j->out_row_bytes;
    void *src = malloc(src_bytes ? src_bytes : 1);
    void *out = j->raw_copy ? src : malloc(out_bytes ? out_bytes : 1);
    qp_err e;
    qp_err_clear(&e);
    if (!src || !out) {
        qp_err_set(&e, QP_ERR_NOMEM, j->opt->out_path, "out of memory converting %s", t->name);
        record_failure(j, &e);
        goto done;
    }
    int64_t rows_per_expert = t->n_rows / t->n_expert;
    for (int64_t b = b0; b < b1 && !atomic_load(&j->failed); b++) {
        if (qp_cancelled(&j->opt->progress)) {
            qp_err_set(&e, QP_ERR_INTERRUPTED, j->opt->out_path, "interrupted");
            record_failure(j, &e);
            break;
        }
        int64_t row0 = b * j->rows_per_batch, n = j->rows_per_batch;
        if (row0 + n > t->n_rows)
            n = t->n_rows - row0;
        qp_status s;
        if (j->raw_copy) {
            s = qp_plan_read_rows_raw(j->plan, j->plan_idx, row0, n, src, &e);
        } else {
            s = qp_plan_read_rows(j->plan, j->plan_idx, row0, n, src, &e);
            /* Batches never straddle experts (see plan_batches), so one
             * importance vector serves the whole batch. */
            const float *imp = NULL;
            if (s == QP_OK && j->opt->importance)
                imp = j->opt->importance(j->opt->importance_ctx, j->plan, j->plan_idx, row0 / rows_per_expert);
            const double *h = NULL;
            if (s == QP_OK && j->opt->covariance && qp_gptq_supported(j->type))
                h = j->opt->covariance(j->opt->covariance_ctx, j->plan, j->plan_idx, row0 / rows_per_expert);
            if (s == QP_OK && h) {
                qp_gptq_options go = j->opt->gptq;
                go.n_threads = 1;
                s = qp_gptq_quantize(j->type, src, n, t->row_len, h, imp, &go, out, &e);
            } else if (s == QP_OK) {
                convert_rows_to(j->type, qt, src, out, n, t->row_len, j->out_row_bytes, imp);
            }
        }
        if (s == QP_OK)
            s = qp_gguf_write_tensor(j->w, j->gguf_idx, (uint64_t)row0 * j->out_row_bytes, out,
                                     (size_t)((uint64_t)n * j->out_row_bytes), &e);
        if (s != QP_OK) {
            record_failure(j, &e);
            break;
        }
        uint64_t done = atomic_fetch_add(&j->bytes_done, (uint64_t)n * j->src_row_bytes) +
                        (uint64_t)n * j->src_row_bytes;
        if (tid == 0)
            qp_report(&j->opt->progress, done, j->bytes_total, t->name);
    }
done:
    if (out != src)
        free(out);
    free(src);
}

/* Batches hold whole rows, at most BATCH_ELEMS elements, and never cross an
 * expert boundary (so each batch has one importance vector). */
static void plan_batches(tensor_job *j, const qp_plan_tensor *t)
{
    int64_t rows_per_expert = t->n_rows / t->n_expert;
    int64_t rpb = BATCH_ELEMS / (t->row_len > 0 ? t->row_len : 1);
    if (rpb < 1)
        rpb = 1;
    if (rpb > rows_per_expert) {
        rpb = rows_per_expert;
    } else {
        /* Make rpb divide rows_per_expert so batches align with experts. */
        while (rows_per_expert % rpb != 0)
            rpb--;
    }
    j->rows_per_batch = rpb;
    j->n_batches = (t->n_rows + rpb - 1) / rpb;
}

/* Key/values of split file k: the first file carries all metadata (as
 * llama.cpp's gguf-split does), every file the split.* keys. */
static qp_status write_file_meta(qp_gguf_writer *w, const qp_plan *plan, const char *hf_dir,
                                 const qp_convert_options *opt, int k, int n_files, int64_t n_tensors, qp_err *err)
{
    qp_status s = QP_OK;
    if (k == 0) {
        qp_meta_options mo = {opt->file_type, opt->recipe};
        int64_t vocab_rows = 0;
        for (int64_t i = 0; i < qp_plan_count(plan); i++)
            if (qp_plan_at(plan, i)->role == QP_ROLE_TOKEN_EMBD)
                vocab_rows = qp_plan_at(plan, i)->n_rows;
        if (opt->custom_meta)
            s = QP_OK; /* extra_meta writes every key */
        else if (qp_plan_gguf(plan))
            s = qp_meta_copy_gguf(w, qp_plan_gguf(plan), &mo, err);
        else if ((s = qp_meta_write_model(w, plan, hf_dir, &mo, err)) == QP_OK)
            s = qp_meta_write_tokenizer(w, hf_dir, qp_plan_config(plan), vocab_rows, err);
        if (s == QP_OK && opt->extra_meta)
            s = opt->extra_meta(opt->extra_meta_ctx, w, err);
    }
    if (s == QP_OK && n_files > 1) {
        if ((s = qp_gguf_set_u16(w, "split.no", (uint16_t)k)) == QP_OK &&
            (s = qp_gguf_set_u16(w, "split.count", (uint16_t)n_files)) == QP_OK)
            s = qp_gguf_set_i32(w, "split.tensors.count", (int32_t)n_tensors);
        if (s != QP_OK && err && err->status == QP_OK)
            qp_err_set(err, s, NULL, "could not add split keys");
    }
    return s;
}

/* --resume: a final-named file is kept when it is structurally valid, its
 * checksums match, and it holds exactly the tensors (names and types) this
 * run would write into it. */
static int file_is_complete(const char *path, const qp_plan *plan, const uint32_t *types, const int *file_of, int k)
{
    qp_gguf *g = NULL;
    qp_err e;
    if (qp_gguf_open(path, &g, &e) != QP_OK)
        return 0;
    int ok = qp_gguf_verify_checksums(g, &e) == QP_OK;
    int64_t j = 0;
    for (int64_t i = 0; ok && i < qp_plan_count(plan); i++) {
        if (file_of[i] != k)
            continue;
        const qp_gguf_tensor *t = qp_gguf_tensor_at(g, j++);
        const char *name = qp_plan_at(plan, i)->name;
        ok = t && t->type == types[i] && t->name.len == strlen(name) && memcmp(t->name.ptr, name, t->name.len) == 0;
    }
    ok = ok && j == qp_gguf_tensor_count(g);
    qp_gguf_close(g);
    return ok;
}

static qp_status write_file(const qp_plan *plan, const char *hf_dir, const qp_convert_options *opt,
                            const uint32_t *types, const int *file_of, int k, int n_files, const char *path,
                            tensor_job *j, qp_err *err)
{
    int64_t n = qp_plan_count(plan);
    int64_t *gidx = calloc((size_t)(n ? n : 1), sizeof *gidx);
    qp_gguf_writer *w = qp_gguf_writer_new(path);
    qp_status s = QP_OK;
    if (!gidx || !w) {
        s = qp_err_set(err, QP_ERR_NOMEM, path, "out of memory");
        goto out;
    }
    if ((s = write_file_meta(w, plan, hf_dir, opt, k, n_files, n, err)) != QP_OK)
        goto out;
    for (int64_t i = 0; i < n; i++) {
        if (file_of[i] != k)
            continue;
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        gidx[i] = qp_gguf_add_tensor(w, t->name, t->n_dims, t->ne, types[i], err);
        if (gidx[i] < 0) {
            s = err && err->status != QP_OK ? err->status
                                            : qp_err_set(err, QP_ERR_INTERNAL, path, "could not add tensor %s", t->name);
            goto out;
        }
    }
    if ((s = qp_gguf_writer_begin(w, err)) != QP_OK)
        goto out;
    for (int64_t i = 0; i < n && s == QP_OK; i++) {
        if (file_of[i] != k)
            continue;
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        j->plan = plan;
        j->opt = opt;
        j->w = w;
        j->plan_idx = i;
        j->gguf_idx = gidx[i];
        j->type = types[i];
        j->raw_copy = types[i] == t->source_dtype;
        j->src_row_bytes = t->source_bytes / (uint64_t)t->n_rows;
        j->out_row_bytes = qp_qtype_row_bytes(types[i], t->row_len);
        atomic_store(&j->failed, 0);
        atomic_flag_clear(&j->err_taken);
        plan_batches(j, t);
        qp_parallel_for(opt->n_threads > 0 ? opt->n_threads : 1, j->n_batches, run_batches, j);
        if (atomic_load(&j->failed)) {
            if (err)
                *err = j->first_err;
            qp_err_set_tensor(err, t->name);
            s = j->first_err.status;
        }
        qp_plan_release(plan, i);
    }
    if (s == QP_OK && qp_cancelled(&opt->progress))
        s = qp_err_set(err, QP_ERR_INTERRUPTED, path, "interrupted");
    if (s == QP_OK)
        s = qp_gguf_writer_finish(w, err);
out:
    if (s != QP_OK)
        qp_gguf_writer_abort(w);
    qp_gguf_writer_free(w);
    free(gidx);
    return s;
}

static uint64_t file_size_of(const char *path)
{
    uint64_t n = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        if (fseeko(f, 0, SEEK_END) == 0)
            n = (uint64_t)ftello(f);
        fclose(f);
    }
    return n;
}

qp_status qp_convert_plan(const qp_plan *plan, const char *hf_dir, const qp_convert_options *opt,
                          qp_convert_stats *stats, qp_err *err)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t n = qp_plan_count(plan);
    uint32_t *types = calloc((size_t)(n ? n : 1), sizeof *types);
    uint64_t *out_bytes = calloc((size_t)(n ? n : 1), sizeof *out_bytes);
    qp_split_plan sp = {0, NULL};
    qp_status s = QP_OK;
    if (!types || !out_bytes) {
        s = qp_err_set(err, QP_ERR_NOMEM, opt->out_path, "out of memory");
        goto out;
    }
    for (int64_t i = 0; i < n; i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        types[i] = qp_convert_type_of(opt, plan, i);
        const qp_qtype *qt = qp_qtype_get(types[i]);
        int plain = types[i] == QP_GGML_F32 || types[i] == QP_GGML_F16 || types[i] == QP_GGML_BF16;
        if (!plain && (!qt || !qt->quantize_row)) {
            s = qp_err_set(err, QP_ERR_UNSUPPORTED, opt->out_path, "cannot quantize to %s", qp_ggml_type_name(types[i]));
            qp_err_set_tensor(err, t->name);
            goto out;
        }
        out_bytes[i] = qp_qtype_row_bytes(types[i], t->row_len) * (uint64_t)t->n_rows;
    }
    int split = opt->split_max_bytes > 0 || opt->split_max_tensors > 0;
    if ((s = qp_split_plan_make(out_bytes, n, opt->split_max_bytes, opt->split_max_tensors, &sp, err)) != QP_OK)
        goto out;
    if (opt->shard_count > 0 && (opt->shard_index < 1 || opt->shard_index > opt->shard_count)) {
        s = qp_err_set(err, QP_ERR_USAGE, NULL, "shard %d/%d is out of range", opt->shard_index, opt->shard_count);
        goto out;
    }
    tensor_job j;
    memset(&j, 0, sizeof j);
    atomic_init(&j.bytes_done, 0);
    int64_t n_written = 0;
    uint64_t bytes_out = 0;
    char path[4096];
    /* Decide first which files this process writes, so progress has a total. */
    char *todo = calloc((size_t)sp.n_files, 1);
    if (!todo) {
        s = qp_err_set(err, QP_ERR_NOMEM, opt->out_path, "out of memory");
        goto out;
    }
    for (int k = 0; k < sp.n_files; k++) {
        if (!qp_split_is_mine(k, opt->shard_index, opt->shard_count))
            continue;
        if (split)
            qp_split_path(opt->out_path, k, sp.n_files, path, sizeof path);
        else
            snprintf(path, sizeof path, "%s", opt->out_path);
        if (opt->resume && file_is_complete(path, plan, types, sp.file_of, k)) {
            if (stats)
                stats->files_kept++;
            continue;
        }
        todo[k] = 1;
        for (int64_t i = 0; i < n; i++)
            if (sp.file_of[i] == k)
                j.bytes_total += qp_plan_at(plan, i)->source_bytes;
    }
    for (int k = 0; k < sp.n_files && s == QP_OK; k++) {
        if (!todo[k])
            continue;
        if (split)
            qp_split_path(opt->out_path, k, sp.n_files, path, sizeof path);
        else
            snprintf(path, sizeof path, "%s", opt->out_path);
        s = write_file(plan, hf_dir, opt, types, sp.file_of, k, sp.n_files, path, &j, err);
        if (s == QP_OK) {
            bytes_out += file_size_of(path);
            if (stats)
                stats->files_written++;
            for (int64_t i = 0; i < n; i++)
                n_written += sp.file_of[i] == k;
        }
    }
    free(todo);
    if (s == QP_OK && stats) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        stats->n_tensors = n_written;
        stats->n_files = sp.n_files;
        stats->bytes_in = j.bytes_total;
        stats->bytes_out = bytes_out;
        stats->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    }
out:
    qp_split_plan_free(&sp);
    free(types);
    free(out_bytes);
    return s;
}

qp_status qp_convert_overhead(const qp_plan *plan, const char *hf_dir, const qp_convert_options *opt, uint64_t *out,
                              qp_err *err)
{
    *out = 0;
    const int64_t n = qp_plan_count(plan);
    /* Never begun, so nothing is created at this path. */
    qp_gguf_writer *w = qp_gguf_writer_new(opt->out_path ? opt->out_path : "overhead.gguf");
    if (!w)
        return qp_err_set(err, QP_ERR_NOMEM, opt->out_path, "out of memory");
    qp_status s = write_file_meta(w, plan, hf_dir, opt, 0, 1, n, err);
    for (int64_t i = 0; i < n && s == QP_OK; i++) {
        const qp_plan_tensor *t = qp_plan_at(plan, i);
        if (qp_gguf_add_tensor(w, t->name, t->n_dims, t->ne, qp_convert_type_of(opt, plan, i), err) < 0)
            s = err && err->status != QP_OK ? err->status : qp_err_set(err, QP_ERR_INTERNAL, NULL, "cannot add %s",
                                                                       t->name);
    }
    uint64_t data_off = 0, size = 0;
    uint32_t align = 1;
    if (s == QP_OK)
        s = qp_gguf_writer_layout(w, &data_off, &size, &align, err);
    if (s == QP_OK)
        *out = data_off + (uint64_t)n * (align - 1);
    qp_gguf_writer_free(w);
    return s;
}

qp_status qp_convert_run(const char *hf_dir, const qp_convert_options *opt, qp_convert_stats *stats, qp_err *err)
{
    qp_hf_config cfg;
    qp_st_model *st = NULL;
    qp_plan *plan = NULL;
    qp_status s = qp_hf_config_load(hf_dir, &cfg, err);
    if (s == QP_OK)
        s = qp_st_open_dir(hf_dir, &st, err);
    if (s == QP_OK)
        s = qp_plan_build(st, &cfg, &plan, err);
    if (s == QP_OK)
        s = qp_convert_plan(plan, hf_dir, opt, stats, err);
    qp_plan_free(plan);
    qp_st_close(st);
    return s;
}
