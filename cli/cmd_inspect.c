/* cmd_inspect.c - `qpack inspect PATH`: what a HF directory or GGUF holds. */
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/qp_ggml_types.h"
#include "cli/omni_cli.h"
#include "convert/meta.h"
#include "convert/omni.h"
#include "convert/plan.h"
#include "format/gguf.h"
#include "format/gguf_set.h"
#include "format/hf_config.h"
#include "format/safetensors.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: qpack inspect PATH [--json]\n"
               "\n"
               "PATH is a Hugging Face checkpoint directory or a GGUF file. Prints the\n"
               "architecture, hyper-parameters, the tensor table (name, shape, type, bytes)\n"
               "and totals. --json prints the same as one JSON object (schema: docs/cli.md).\n"
               "\n"
               "exit: 0 ok, 1 internal or I/O error, 2 bad input or usage\n");
}

static void shape_str(char *buf, size_t n, int dims, const int64_t *ne)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < dims && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)ne[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static cJSON *shape_json(int dims, const int64_t *ne)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < dims; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)ne[i]));
    return a;
}

static int print_json(cJSON *root)
{
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s)
        return CLI_EXIT_INTERNAL;
    puts(s);
    free(s);
    return CLI_EXIT_OK;
}

static int inspect_hf(const char *dir, int json)
{
    if (qp_omni_is_omni_dir(dir)) /* three files' worth of components */
        return cli_inspect_omni(dir, json);
    qp_err err;
    qp_err_clear(&err);
    qp_hf_config cfg;
    qp_st_model *st = NULL;
    qp_plan *plan = NULL;
    qp_status s = qp_hf_config_load(dir, &cfg, &err);
    if (s == QP_OK)
        s = qp_st_open_dir(dir, &st, &err);
    if (s == QP_OK)
        s = qp_plan_build(st, &cfg, &plan, &err);
    if (s != QP_OK) {
        qp_st_close(st);
        return cli_fail(&err);
    }
    qp_param_count pc = qp_meta_count_params(plan);
    char label[64];
    qp_meta_size_label(&pc, label, sizeof label);
    uint64_t src_bytes = 0;
    for (size_t i = 0; i < qp_st_count(st); i++)
        src_bytes += qp_st_at(st, i)->nbytes;
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "kind", "hf");
        cJSON_AddStringToObject(root, "architecture", cfg.architecture_name);
        cJSON_AddStringToObject(root, "gguf_architecture", qp_arch_name(cfg.arch));
        cJSON *hp = cJSON_AddObjectToObject(root, "hparams");
        cJSON_AddNumberToObject(hp, "vocab_size", (double)cfg.vocab_size);
        cJSON_AddNumberToObject(hp, "hidden_size", (double)cfg.hidden_size);
        cJSON_AddNumberToObject(hp, "intermediate_size", (double)cfg.intermediate_size);
        cJSON_AddNumberToObject(hp, "num_hidden_layers", (double)cfg.num_hidden_layers);
        cJSON_AddNumberToObject(hp, "num_attention_heads", (double)cfg.num_attention_heads);
        cJSON_AddNumberToObject(hp, "num_key_value_heads", (double)cfg.num_key_value_heads);
        cJSON_AddNumberToObject(hp, "head_dim", (double)cfg.head_dim);
        cJSON_AddNumberToObject(hp, "rope_theta", cfg.rope_theta);
        cJSON_AddNumberToObject(hp, "rms_norm_eps", cfg.rms_norm_eps);
        cJSON_AddNumberToObject(hp, "num_experts", (double)cfg.num_experts);
        cJSON_AddNumberToObject(hp, "num_experts_per_tok", (double)cfg.num_experts_per_tok);
        cJSON_AddNumberToObject(hp, "moe_intermediate_size", (double)cfg.moe_intermediate_size);
        cJSON_AddBoolToObject(hp, "tie_word_embeddings", cfg.tie_word_embeddings);
        cJSON_AddStringToObject(root, "unknown_config_keys", cfg.unknown_keys);
        cJSON *files = cJSON_AddArrayToObject(root, "files");
        for (size_t i = 0; i < qp_st_file_count(st); i++)
            cJSON_AddItemToArray(files, cJSON_CreateString(qp_st_file_path(st, (int)i)));
        cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
        for (size_t i = 0; i < qp_st_count(st); i++) {
            const qp_st_tensor *t = qp_st_at(st, i);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", t->name);
            cJSON_AddItemToObject(o, "shape", shape_json(t->n_dims, t->shape));
            cJSON_AddStringToObject(o, "dtype", qp_st_dtype_name(t->dtype));
            cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
            cJSON_AddItemToArray(ts, o);
        }
        cJSON *tot = cJSON_AddObjectToObject(root, "totals");
        cJSON_AddNumberToObject(tot, "tensors", (double)qp_st_count(st));
        cJSON_AddNumberToObject(tot, "bytes", (double)src_bytes);
        cJSON_AddNumberToObject(tot, "parameters", (double)pc.total);
        cJSON_AddNumberToObject(tot, "shared_parameters", (double)pc.shared);
        cJSON_AddNumberToObject(tot, "parameters_per_expert", (double)pc.per_expert);
        cJSON_AddStringToObject(tot, "size_label", label);
        qp_plan_free(plan);
        qp_st_close(st);
        return print_json(root);
    }
    printf("%s: Hugging Face checkpoint, %s (GGUF architecture %s)\n", dir, cfg.architecture_name,
           qp_arch_name(cfg.arch));
    printf("  layers %lld, hidden %lld, heads %lld/%lld (head_dim %lld), ffn %lld, vocab %lld\n",
           (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size, (long long)cfg.num_attention_heads,
           (long long)cfg.num_key_value_heads, (long long)cfg.head_dim, (long long)cfg.intermediate_size,
           (long long)cfg.vocab_size);
    if (cfg.num_experts > 0)
        printf("  experts %lld (top-%lld, width %lld, norm_topk_prob %s)\n", (long long)cfg.num_experts,
               (long long)cfg.num_experts_per_tok, (long long)cfg.moe_intermediate_size,
               cfg.norm_topk_prob ? "true" : "false");
    printf("  rope_theta %g, rms_norm_eps %g, tied embeddings %s\n", cfg.rope_theta, cfg.rms_norm_eps,
           cfg.tie_word_embeddings ? "yes" : "no");
    if (cfg.unknown_keys[0])
        printf("  config keys not understood: %s\n", cfg.unknown_keys);
    printf("\n%-60s %-22s %-6s %12s\n", "tensor", "shape", "dtype", "bytes");
    for (size_t i = 0; i < qp_st_count(st); i++) {
        const qp_st_tensor *t = qp_st_at(st, i);
        char sh[96];
        shape_str(sh, sizeof sh, t->n_dims, t->shape);
        printf("%-60s %-22s %-6s %12llu\n", t->name, sh, qp_st_dtype_name(t->dtype), (unsigned long long)t->nbytes);
    }
    printf("\n%zu tensors in %zu file(s), %.2f MB, %llu parameters (%s)\n", qp_st_count(st), qp_st_file_count(st),
           src_bytes / 1e6, (unsigned long long)pc.total, label);
    qp_plan_free(plan);
    qp_st_close(st);
    return CLI_EXIT_OK;
}

static void kv_value_str(const qp_gguf *g, int64_t i, char *buf, size_t n)
{
    qp_gguf_vtype t = qp_gguf_kv_type(g, i);
    if (t == QP_GGUF_STRING) {
        qp_gguf_str s = qp_gguf_kv_str(g, i);
        int len = s.len > 60 ? 60 : (int)s.len;
        snprintf(buf, n, "'%.*s'%s", len, s.ptr, s.len > 60 ? "..." : "");
        for (char *c = buf; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
    } else if (t == QP_GGUF_ARRAY) {
        snprintf(buf, n, "%s[%llu]", qp_gguf_vtype_name(qp_gguf_arr_type(g, i)),
                 (unsigned long long)qp_gguf_arr_len(g, i));
    } else if (t == QP_GGUF_F32 || t == QP_GGUF_F64) {
        double d = 0;
        qp_gguf_kv_as_f64(g, i, &d);
        snprintf(buf, n, "%.9g", d);
    } else if (t == QP_GGUF_BOOL) {
        uint64_t v = 0;
        qp_gguf_kv_as_u64(g, i, &v);
        snprintf(buf, n, "%s", v ? "true" : "false");
    } else if (t == QP_GGUF_I8 || t == QP_GGUF_I16 || t == QP_GGUF_I32 || t == QP_GGUF_I64) {
        int64_t v = 0;
        qp_gguf_kv_as_i64(g, i, &v);
        snprintf(buf, n, "%lld", (long long)v);
    } else {
        uint64_t v = 0;
        qp_gguf_kv_as_u64(g, i, &v);
        snprintf(buf, n, "%llu", (unsigned long long)v);
    }
}

static int inspect_gguf(const char *path, int json)
{
    qp_err err;
    qp_err_clear(&err);
    qp_gguf_set *set = NULL;
    if (qp_gguf_set_open(path, &set, &err) != QP_OK)
        return cli_fail(&err);
    const qp_gguf *g = qp_gguf_set_file(set, 0); /* metadata lives in the first file */
    int64_t n_tensors = qp_gguf_set_tensor_count(set);
    uint64_t total = 0, weights = 0, file_bytes = 0;
    for (int k = 0; k < qp_gguf_set_file_count(set); k++)
        file_bytes += qp_gguf_file_size(qp_gguf_set_file(set, k));
    for (int64_t i = 0; i < n_tensors; i++) {
        const qp_gguf_tensor *t = qp_gguf_set_tensor_at(set, i);
        total += t->nbytes;
        weights += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "kind", "gguf");
        cJSON_AddNumberToObject(root, "version", qp_gguf_version(g));
        cJSON_AddNumberToObject(root, "alignment", qp_gguf_alignment(g));
        cJSON_AddNumberToObject(root, "files", qp_gguf_set_file_count(set));
        cJSON *md = cJSON_AddArrayToObject(root, "metadata");
        for (int64_t i = 0; i < qp_gguf_kv_count(g); i++) {
            qp_gguf_str k = qp_gguf_kv_key(g, i);
            char key[512], val[256];
            snprintf(key, sizeof key, "%.*s", (int)(k.len > 500 ? 500 : k.len), k.ptr);
            kv_value_str(g, i, val, sizeof val);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "key", key);
            cJSON_AddStringToObject(o, "type", qp_gguf_vtype_name(qp_gguf_kv_type(g, i)));
            cJSON_AddStringToObject(o, "value", val);
            cJSON_AddItemToArray(md, o);
        }
        cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
        for (int64_t i = 0; i < n_tensors; i++) {
            const qp_gguf_tensor *t = qp_gguf_set_tensor_at(set, i);
            char name[512];
            snprintf(name, sizeof name, "%.*s", (int)(t->name.len > 500 ? 500 : t->name.len), t->name.ptr);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", name);
            cJSON_AddItemToObject(o, "ne", shape_json((int)t->n_dims, t->ne));
            cJSON_AddStringToObject(o, "type", qp_ggml_type_name(t->type));
            cJSON_AddNumberToObject(o, "bytes", (double)t->nbytes);
            cJSON_AddItemToArray(ts, o);
        }
        cJSON *tot = cJSON_AddObjectToObject(root, "totals");
        cJSON_AddNumberToObject(tot, "tensors", (double)n_tensors);
        cJSON_AddNumberToObject(tot, "tensor_bytes", (double)total);
        cJSON_AddNumberToObject(tot, "file_bytes", (double)file_bytes);
        cJSON_AddNumberToObject(tot, "parameters", (double)weights);
        cJSON_AddNumberToObject(tot, "bits_per_weight", weights ? 8.0 * (double)total / (double)weights : 0.0);
        qp_gguf_set_close(set);
        return print_json(root);
    }
    printf("%s: GGUF v%u, %lld key/values, %lld tensors, alignment %u", path, qp_gguf_version(g),
           (long long)qp_gguf_kv_count(g), (long long)n_tensors, qp_gguf_alignment(g));
    if (qp_gguf_set_file_count(set) > 1)
        printf(", split over %d files starting at %s", qp_gguf_set_file_count(set), qp_gguf_path(g));
    printf("\n\n");
    for (int64_t i = 0; i < qp_gguf_kv_count(g); i++) {
        qp_gguf_str k = qp_gguf_kv_key(g, i);
        char val[256];
        kv_value_str(g, i, val, sizeof val);
        printf("  %-48.*s %-8s %s\n", (int)(k.len > 200 ? 200 : k.len), k.ptr,
               qp_gguf_vtype_name(qp_gguf_kv_type(g, i)), val);
    }
    printf("\n%-40s %-22s %-7s %12s\n", "tensor", "ne", "type", "bytes");
    for (int64_t i = 0; i < n_tensors; i++) {
        const qp_gguf_tensor *t = qp_gguf_set_tensor_at(set, i);
        char sh[96];
        shape_str(sh, sizeof sh, (int)t->n_dims, t->ne);
        printf("%-40.*s %-22s %-7s %12llu\n", (int)(t->name.len > 200 ? 200 : t->name.len), t->name.ptr, sh,
               qp_ggml_type_name(t->type), (unsigned long long)t->nbytes);
    }
    printf("\n%lld tensors, %.2f MB of tensor data, %llu parameters, %.3f bits per weight\n",
           (long long)n_tensors, total / 1e6, (unsigned long long)weights,
           weights ? 8.0 * (double)total / (double)weights : 0.0);
    qp_gguf_set_close(set);
    return CLI_EXIT_OK;
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return CLI_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-') {
            return cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        } else if (!path) {
            path = argv[i];
        } else {
            return cli_usage_error("inspect", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!path)
        return cli_usage_error("inspect", "missing PATH");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "qpack: %s: no such file or directory\n", path);
        return CLI_EXIT_BAD_INPUT;
    }
    return S_ISDIR(sb.st_mode) ? inspect_hf(path, json) : inspect_gguf(path, json);
}
