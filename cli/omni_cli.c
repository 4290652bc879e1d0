/* omni_cli.c - the Qwen3-Omni paths of `qpack convert` and `qpack inspect`
 * (convert/omni.h does the work; this file only prints). */
#include "cli/omni_cli.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "common/qp_ggml_types.h"
#include "common/qp_threads.h"
#include "convert/omni.h"
#include "quant/qtype.h"

static void print_notes(const qp_omni_notes *n)
{
    for (int i = 0; i < n->n; i++)
        fprintf(stderr, "qpack: note: %s\n", n->msg[i]);
    if (n->dropped)
        fprintf(stderr, "qpack: note: ... and %d more notes\n", n->dropped);
}

static void shape_str(char *buf, size_t size, const qp_plan_tensor *t)
{
    size_t o = (size_t)snprintf(buf, size, "[");
    for (uint32_t d = 0; d < t->n_dims && o < size; d++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", d ? ", " : "", (long long)t->ne[d]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

static void print_dry_run(const qp_omni_job *job, char paths[QP_OMNI_FILE_COUNT][4096])
{
    for (int f = 0; f < QP_OMNI_FILE_COUNT; f++) {
        const qp_plan *plan = qp_omni_job_plan(job, (qp_omni_file)f);
        uint64_t total = 0, weights = 0;
        printf("%s (%s):\n%-48s %-22s %-7s %12s\n", paths[f], qp_omni_file_role((qp_omni_file)f), "tensor", "shape",
               "type", "bytes");
        for (int64_t i = 0; i < qp_plan_count(plan); i++) {
            const qp_plan_tensor *t = qp_plan_at(plan, i);
            uint32_t type = qp_omni_job_type(job, (qp_omni_file)f, i);
            uint64_t b = qp_qtype_row_bytes(type, t->row_len) * (uint64_t)t->n_rows;
            int fb = qp_omni_job_fallback(job, (qp_omni_file)f, i);
            char sh[96];
            shape_str(sh, sizeof sh, t);
            total += b;
            weights += (uint64_t)t->row_len * (uint64_t)t->n_rows;
            printf("%-48s %-22s %-7s %12llu%s%s\n", t->name, sh, qp_ggml_type_name(type), (unsigned long long)b,
                   fb >= 0 ? "  fallback from " : "", fb >= 0 ? qp_ggml_type_name((uint32_t)fb) : "");
        }
        printf("total: %llu tensor bytes, %.2f MB, %.3f bits per weight\n\n", (unsigned long long)total, total / 1e6,
               weights ? 8.0 * (double)total / (double)weights : 0.0);
    }
}

int cli_convert_omni(const cli_quant_opts *o, const qp_job_options *jo, const char *hf_dir, uint32_t mmproj_type)
{
    qp_err err;
    qp_err_clear(&err);
    if (jo->imatrix_path) {
        qp_err_set(&err, QP_ERR_UNSUPPORTED, jo->imatrix_path,
                   "importance matrices are not supported for Qwen3-Omni checkpoints yet");
        return cli_fail(&err);
    }
    char paths[QP_OMNI_FILE_COUNT][4096];
    const char *stem = o->out ? o->out : "out.gguf";
    if (qp_omni_output_paths(stem, paths, &err) != QP_OK)
        return cli_fail(&err);
    struct stat sb;
    for (int f = 1; !o->dry_run && !o->force && f < QP_OMNI_FILE_COUNT; f++)
        if (stat(paths[f], &sb) == 0) {
            fprintf(stderr, "qpack: %s: output exists (use --force to overwrite)\n", paths[f]);
            return CLI_EXIT_BAD_INPUT;
        }
    qp_omni_options oo;
    memset(&oo, 0, sizeof oo);
    oo.preset = jo->preset;
    oo.pure = jo->pure;
    oo.output_type = jo->output_type;
    oo.token_embd_type = jo->token_embd_type;
    oo.n_overrides = jo->n_overrides;
    oo.override_patterns = jo->override_patterns;
    oo.override_types = jo->override_types;
    oo.mmproj_type = mmproj_type;
    qp_omni_job *job = NULL;
    if (qp_omni_job_open(hf_dir, &oo, &job, &err) != QP_OK)
        return cli_fail(&err);
    if (!o->quiet)
        print_notes(qp_omni_job_notes(job));
    if (o->dry_run) {
        print_dry_run(job, paths);
        qp_omni_job_free(job);
        return CLI_EXIT_OK;
    }
    for (int f = 0; f < QP_OMNI_FILE_COUNT && !o->quiet; f++) {
        const qp_plan *plan = qp_omni_job_plan(job, (qp_omni_file)f);
        for (int64_t i = 0; i < qp_plan_count(plan); i++) {
            int fb = qp_omni_job_fallback(job, (qp_omni_file)f, i);
            if (fb >= 0)
                fprintf(stderr, "qpack: note: %s: row length %lld is not a multiple of %s's block, using %s\n",
                        qp_plan_at(plan, i)->name, (long long)qp_plan_at(plan, i)->row_len,
                        qp_ggml_type_name((uint32_t)fb), qp_ggml_type_name(qp_omni_job_type(job, (qp_omni_file)f, i)));
        }
    }
    cli_progress *bar = cli_progress_new(stem, "B", o->quiet);
    qp_omni_result res;
    qp_status s = qp_omni_job_write(job, stem, o->threads > 0 ? (int)o->threads : qp_cpu_count(),
                                    cli_progress_hook(bar), &res, &err);
    cli_progress_free(bar);
    qp_omni_job_free(job);
    if (s != QP_OK)
        return cli_fail(&err);
    for (int f = 0; f < QP_OMNI_FILE_COUNT; f++)
        printf("wrote %s (%s): %lld tensors, %.2f MB (%.2f MB read in %.2f s)\n", res.paths[f],
               qp_omni_file_role((qp_omni_file)f), (long long)res.stats[f].n_tensors, res.stats[f].bytes_out / 1e6,
               res.stats[f].bytes_in / 1e6, res.stats[f].seconds);
    return CLI_EXIT_OK;
}

static const char *label(uint64_t n, char *buf, size_t size)
{
    if (n >= 1000000000ull)
        snprintf(buf, size, "%.2fB", n / 1e9);
    else if (n >= 1000000ull)
        snprintf(buf, size, "%.2fM", n / 1e6);
    else
        snprintf(buf, size, "%.1fK", n / 1e3);
    return buf;
}

int cli_inspect_omni(const char *hf_dir, int json)
{
    qp_err err;
    qp_err_clear(&err);
    qp_omni_config *cfg = calloc(1, sizeof *cfg);
    qp_omni_notes *notes = calloc(1, sizeof *notes);
    qp_st_model *st = NULL;
    qp_omni_params pc;
    qp_status s = cfg && notes ? QP_OK : qp_err_set(&err, QP_ERR_NOMEM, hf_dir, "out of memory");
    if (s == QP_OK)
        s = qp_omni_config_load(hf_dir, cfg, notes, &err);
    if (s == QP_OK)
        s = qp_st_open_dir(hf_dir, &st, &err);
    if (s == QP_OK)
        s = qp_omni_count_params(st, &pc, &err);
    if (s != QP_OK) {
        qp_st_close(st);
        free(cfg);
        free(notes);
        return cli_fail(&err);
    }
    uint64_t src_bytes = 0;
    for (size_t i = 0; i < qp_st_count(st); i++)
        src_bytes += qp_st_at(st, i)->nbytes;
    int rc = CLI_EXIT_OK;
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "kind", "hf");
        cJSON_AddStringToObject(root, "architecture", "Qwen3OmniMoeForConditionalGeneration");
        cJSON_AddStringToObject(root, "gguf_architecture", "qwen3vlmoe");
        cJSON *comp = cJSON_AddObjectToObject(root, "components");
        for (int c = 0; c < QP_OMNI_COMPONENT_COUNT; c++) {
            cJSON *o = cJSON_AddObjectToObject(comp, qp_omni_component_name((qp_omni_component)c));
            cJSON_AddNumberToObject(o, "parameters", (double)pc.params[c]);
            cJSON_AddNumberToObject(o, "tensors", (double)pc.tensors[c]);
            cJSON_AddNumberToObject(o, "bytes", (double)pc.bytes[c]);
        }
        cJSON *tot = cJSON_AddObjectToObject(root, "totals");
        cJSON_AddNumberToObject(tot, "tensors", (double)qp_st_count(st));
        cJSON_AddNumberToObject(tot, "bytes", (double)src_bytes);
        cJSON_AddNumberToObject(tot, "parameters", (double)pc.total_params);
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        if (text)
            puts(text);
        else
            rc = CLI_EXIT_INTERNAL;
        free(text);
    } else {
        const qp_hf_config *t = &cfg->thinker;
        printf("%s: Hugging Face checkpoint, Qwen3OmniMoeForConditionalGeneration (three GGUF files: thinker as "
               "qwen3vlmoe, mmproj, talker)\n", hf_dir);
        printf("  thinker text: layers %lld, hidden %lld, heads %lld/%lld (head_dim %lld), experts %lld (top-%lld, "
               "width %lld), vocab %lld\n",
               (long long)t->num_hidden_layers, (long long)t->hidden_size, (long long)t->num_attention_heads,
               (long long)t->num_key_value_heads, (long long)t->head_dim, (long long)t->num_experts,
               (long long)t->num_experts_per_tok, (long long)t->moe_intermediate_size, (long long)t->vocab_size);
        printf("  audio: %lld layers, d_model %lld; vision: %lld blocks, hidden %lld, %lld deepstack mergers\n",
               (long long)cfg->audio.encoder_layers, (long long)cfg->audio.d_model, (long long)cfg->vision.depth,
               (long long)cfg->vision.hidden_size, (long long)cfg->vision.n_deepstack);
        printf("  talker: %lld layers, %lld experts + shared; code predictor %lld layers, %lld code groups; code2wav "
               "%lld layers\n\n",
               (long long)cfg->talker.num_hidden_layers, (long long)cfg->talker.num_experts,
               (long long)cfg->code_predictor.num_hidden_layers, (long long)cfg->num_code_groups,
               (long long)cfg->code2wav.num_hidden_layers);
        printf("%-14s %14s %8s %12s %8s\n", "component", "parameters", "", "bytes", "tensors");
        char buf[32];
        for (int c = 0; c < QP_OMNI_COMPONENT_COUNT; c++)
            printf("%-14s %14llu %8s %12llu %8llu\n", qp_omni_component_name((qp_omni_component)c),
                   (unsigned long long)pc.params[c], label(pc.params[c], buf, sizeof buf),
                   (unsigned long long)pc.bytes[c], (unsigned long long)pc.tensors[c]);
        printf("%-14s %14llu %8s %12llu %8zu\n", "total", (unsigned long long)pc.total_params,
               label(pc.total_params, buf, sizeof buf), (unsigned long long)src_bytes, qp_st_count(st));
        for (int i = 0; i < notes->n; i++)
            printf("  note: %s\n", notes->msg[i]);
    }
    qp_st_close(st);
    free(cfg);
    free(notes);
    return rc;
}
