/* test_hf_config.c - config.json parsing: the fixture configs, the
 * transformers-5 spelling, unknown keys, and bad configs. */
/* ctest-labels: fast */
#include "support/qp_test.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/hf_config.h"

static char *g_tmp;

static int group_setup(void **state)
{
    (void)state;
    g_tmp = qp_test_tmpdir("test_hf_config");
    return g_tmp ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    qp_test_rmtree(g_tmp);
    free(g_tmp);
    return 0;
}

static void check_err(qp_status got, qp_status want, const qp_err *err, const char *file_part,
                      const char *problem, const char *key)
{
    char line[2048];
    qp_err_format(err, line, sizeof line);
    if (got != want || !strstr(line, file_part) || !strstr(line, problem) || (key && strcmp(err->tensor, key) != 0)) {
        print_error("status %s (want %s), key \"%s\" (want \"%s\")\n  line: %s\n  want file \"%s\", problem \"%s\"\n",
                    qp_status_name(got), qp_status_name(want), err->tensor, key ? key : "(any)", line, file_part,
                    problem);
        fail();
    }
}

static void load_ok(const char *model, qp_hf_config *c)
{
    qp_err err;
    qp_err_clear(&err);
    qp_status st = qp_hf_config_load(qp_fixture(model), c, &err);
    if (st != QP_OK) {
        char line[2048];
        qp_err_format(&err, line, sizeof line);
        fail_msg("%s", line);
    }
}

/* The fixture's config.json with edits: pairs of (key, raw JSON value or
 * NULL to delete), terminated by a NULL key. Returns malloc'ed text. */
static char *edited(const char *model, ...)
{
    char rel[512];
    snprintf(rel, sizeof rel, "%s/config.json", model);
    char *text = qp_test_read_file(qp_fixture(rel), NULL);
    assert_non_null(text);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    va_list ap;
    va_start(ap, model);
    const char *key;
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        cJSON_DeleteItemFromObjectCaseSensitive(root, key);
        if (val)
            cJSON_AddItemToObject(root, key, cJSON_CreateRaw(val));
    }
    va_end(ap);
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    return out;
}

static qp_status parse(const char *json, qp_hf_config *c, qp_err *err)
{
    qp_err_clear(err);
    return qp_hf_config_parse(json, strlen(json), "mem/config.json", c, err);
}

static void test_dense_fixture(void **state)
{
    (void)state;
    qp_hf_config c;
    load_ok("models/qwen3-tiny", &c);
    assert_int_equal(c.arch, QP_ARCH_QWEN3);
    assert_string_equal(c.architecture_name, "Qwen3ForCausalLM");
    assert_string_equal(qp_arch_name(c.arch), "qwen3");
    assert_string_equal(c.model_type, "qwen3");
    assert_int_equal(c.vocab_size, 8192);
    assert_int_equal(c.hidden_size, 256);
    assert_int_equal(c.intermediate_size, 768);
    assert_int_equal(c.num_hidden_layers, 4);
    assert_int_equal(c.num_attention_heads, 4);
    assert_int_equal(c.num_key_value_heads, 2);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.max_position_embeddings, 4096);
    assert_true(c.rms_norm_eps == 1e-6);
    assert_true(c.rope_theta == 1e6);
    assert_string_equal(c.rope_scaling.type, "");
    assert_int_equal(c.tie_word_embeddings, 1);
    assert_int_equal(c.num_experts, 0);
    assert_int_equal(c.num_experts_per_tok, 0);
    assert_int_equal(c.bos_token_id, 8189);
    assert_int_equal(c.eos_token_id, 8189);
    assert_int_equal(c.pad_token_id, -1);
    assert_string_equal(c.torch_dtype, "bfloat16");
    assert_int_equal(c.fp8, 0);
    assert_string_equal(c.unknown_keys, "");
}

static void test_moe_fixture(void **state)
{
    (void)state;
    qp_hf_config c;
    load_ok("models/qwen3-moe-tiny", &c);
    assert_int_equal(c.arch, QP_ARCH_QWEN3_MOE);
    assert_string_equal(qp_arch_name(c.arch), "qwen3moe");
    assert_string_equal(c.model_type, "qwen3_moe");
    assert_int_equal(c.hidden_size, 256);
    assert_int_equal(c.num_hidden_layers, 4);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.num_experts, 16);
    assert_int_equal(c.num_experts_per_tok, 4);
    assert_int_equal(c.moe_intermediate_size, 256);
    assert_int_equal(c.norm_topk_prob, 1);
    assert_int_equal(c.decoder_sparse_step, 1);
    assert_int_equal(c.n_mlp_only_layers, 0);
    assert_int_equal(c.tie_word_embeddings, 0);
    assert_true(c.rope_theta == 1e6);
    assert_int_equal(c.eos_token_id, 8189);
    assert_string_equal(c.unknown_keys, "");
}

static void test_omni_fixture(void **state)
{
    (void)state;
    qp_hf_config c;
    load_ok("models/qwen3-omni-tiny-random", &c);
    assert_int_equal(c.arch, QP_ARCH_QWEN3_OMNI);
    assert_string_equal(c.architecture_name, "Qwen3OmniMoeForConditionalGeneration");
    assert_string_equal(qp_arch_name(c.arch), "qwen3vlmoe");
    assert_string_equal(c.model_type, "qwen3_omni_moe");
    assert_int_equal(c.bos_token_id, -1);
    assert_string_equal(qp_arch_name(QP_ARCH_UNKNOWN), "unknown");
}

static void assert_cfg_equal(const qp_hf_config *a, const qp_hf_config *b)
{
    assert_int_equal(a->arch, b->arch);
    assert_string_equal(a->architecture_name, b->architecture_name);
    assert_string_equal(a->model_type, b->model_type);
    assert_int_equal(a->vocab_size, b->vocab_size);
    assert_int_equal(a->hidden_size, b->hidden_size);
    assert_int_equal(a->intermediate_size, b->intermediate_size);
    assert_int_equal(a->num_hidden_layers, b->num_hidden_layers);
    assert_int_equal(a->num_attention_heads, b->num_attention_heads);
    assert_int_equal(a->num_key_value_heads, b->num_key_value_heads);
    assert_int_equal(a->head_dim, b->head_dim);
    assert_int_equal(a->max_position_embeddings, b->max_position_embeddings);
    assert_true(a->rms_norm_eps == b->rms_norm_eps);
    assert_true(a->rope_theta == b->rope_theta);
    assert_string_equal(a->rope_scaling.type, b->rope_scaling.type);
    assert_true(a->rope_scaling.factor == b->rope_scaling.factor);
    assert_true(a->rope_scaling.original_max_position_embeddings == b->rope_scaling.original_max_position_embeddings);
    assert_true(a->rope_scaling.attn_factor == b->rope_scaling.attn_factor);
    assert_true(a->rope_scaling.beta_fast == b->rope_scaling.beta_fast);
    assert_true(a->rope_scaling.beta_slow == b->rope_scaling.beta_slow);
    assert_int_equal(a->tie_word_embeddings, b->tie_word_embeddings);
    assert_int_equal(a->num_experts, b->num_experts);
    assert_int_equal(a->num_experts_per_tok, b->num_experts_per_tok);
    assert_int_equal(a->moe_intermediate_size, b->moe_intermediate_size);
    assert_int_equal(a->norm_topk_prob, b->norm_topk_prob);
    assert_int_equal(a->decoder_sparse_step, b->decoder_sparse_step);
    assert_int_equal(a->n_mlp_only_layers, b->n_mlp_only_layers);
    for (int64_t i = 0; i < a->n_mlp_only_layers; i++)
        assert_int_equal(a->mlp_only_layers[i], b->mlp_only_layers[i]);
    assert_int_equal(a->bos_token_id, b->bos_token_id);
    assert_int_equal(a->eos_token_id, b->eos_token_id);
    assert_int_equal(a->pad_token_id, b->pad_token_id);
    assert_string_equal(a->torch_dtype, b->torch_dtype);
    assert_int_equal(a->fp8, b->fp8);
    assert_int_equal(a->fp8_block[0], b->fp8_block[0]);
    assert_int_equal(a->fp8_block[1], b->fp8_block[1]);
    assert_string_equal(a->unknown_keys, b->unknown_keys);
}

static void test_transformers5_spelling(void **state)
{
    (void)state;
    qp_hf_config v4, v5;
    qp_err err;
    /* transformers 4 with yarn, to compare the scaling fields too. */
    char *j4 = edited("models/qwen3-moe-tiny", "rope_scaling",
                      "{\"type\":\"yarn\",\"factor\":4.0,\"original_max_position_embeddings\":1024}", NULL);
    assert_int_equal(parse(j4, &v4, &err), QP_OK);
    assert_string_equal(v4.rope_scaling.type, "yarn");
    assert_true(v4.rope_scaling.factor == 4.0);
    assert_true(v4.rope_scaling.original_max_position_embeddings == 1024);

    /* Same model as transformers 5 writes it. */
    const char *j5 = "{\n"
                     "  \"architectures\": [\"Qwen3MoeForCausalLM\"],\n"
                     "  \"model_type\": \"qwen3_moe\",\n"
                     "  \"dtype\": \"bfloat16\",\n"
                     "  \"transformers_version\": \"5.17.0\",\n"
                     "  \"vocab_size\": 8192, \"hidden_size\": 256, \"intermediate_size\": 768,\n"
                     "  \"num_hidden_layers\": 4, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,\n"
                     "  \"head_dim\": 64, \"max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-06,\n"
                     "  \"rope_parameters\": {\"rope_type\": \"yarn\", \"rope_theta\": 1000000.0, \"factor\": 4.0,\n"
                     "                        \"original_max_position_embeddings\": 1024},\n"
                     "  \"tie_word_embeddings\": false,\n"
                     "  \"num_local_experts\": 16, \"num_experts_per_tok\": 4, \"moe_intermediate_size\": 256,\n"
                     "  \"norm_topk_prob\": true, \"decoder_sparse_step\": 1, \"mlp_only_layers\": [],\n"
                     "  \"bos_token_id\": 8189, \"eos_token_id\": [8189, 8191], \"pad_token_id\": null,\n"
                     "  \"hidden_act\": \"silu\", \"attention_bias\": false, \"attention_dropout\": 0.0,\n"
                     "  \"use_sliding_window\": false, \"sliding_window\": null, \"max_window_layers\": 4,\n"
                     "  \"layer_types\": [\"full_attention\", \"full_attention\", \"full_attention\", \"full_attention\"],\n"
                     "  \"router_aux_loss_coef\": 0.001, \"output_router_logits\": false, \"use_cache\": true,\n"
                     "  \"initializer_range\": 0.02, \"output_attentions\": false, \"output_hidden_states\": false,\n"
                     "  \"return_dict\": true, \"chunk_size_feed_forward\": 0, \"is_encoder_decoder\": false,\n"
                     "  \"id2label\": {\"0\": \"LABEL_0\"}, \"label2id\": {\"LABEL_0\": 0}, \"problem_type\": null,\n"
                     "  \"_name_or_path\": \"\"\n"
                     "}\n";
    assert_int_equal(parse(j5, &v5, &err), QP_OK);
    assert_cfg_equal(&v4, &v5);
    free(j4);

    /* The fixture (no scaling) against rope_parameters with the default type. */
    qp_hf_config f;
    load_ok("models/qwen3-tiny", &f);
    char *j = edited("models/qwen3-tiny", "rope_theta", NULL, "rope_scaling", NULL, "torch_dtype", NULL, "dtype",
                     "\"bfloat16\"", "rope_parameters", "{\"rope_type\":\"default\",\"rope_theta\":1000000.0}", NULL);
    assert_int_equal(parse(j, &v5, &err), QP_OK);
    assert_cfg_equal(&f, &v5);
    free(j);

    /* Both spellings present must agree. */
    j = edited("models/qwen3-tiny", "rope_parameters", "{\"rope_type\":\"default\",\"rope_theta\":10000.0}", NULL);
    check_err(parse(j, &v5, &err), QP_ERR_BAD_INPUT, &err, "mem/config.json", "disagrees with rope_theta",
              "rope_parameters.rope_theta");
    free(j);
    j = edited("models/qwen3-moe-tiny", "num_local_experts", "8", NULL);
    check_err(parse(j, &v5, &err), QP_ERR_BAD_INPUT, &err, "mem/config.json", "disagrees with num_experts",
              "num_local_experts");
    free(j);
}

static void test_unknown_keys(void **state)
{
    (void)state;
    qp_hf_config c;
    qp_err err;
    char *j = edited("models/qwen3-tiny", "frobnicate", "1", "rope_scaling",
                     "{\"rope_type\":\"linear\",\"factor\":2,\"mrope_section\":[16,8,8]}", "num_experts", "8", NULL);
    assert_int_equal(parse(j, &c, &err), QP_OK);
    /* Dense model: MoE keys are not understood either. */
    assert_non_null(strstr(c.unknown_keys, "frobnicate"));
    assert_non_null(strstr(c.unknown_keys, "rope_scaling.mrope_section"));
    assert_non_null(strstr(c.unknown_keys, "num_experts"));
    assert_null(strstr(c.unknown_keys, "rope_theta"));
    assert_int_equal(c.num_experts, 0);
    assert_string_equal(c.rope_scaling.type, "linear");
    assert_true(c.rope_scaling.factor == 2.0);
    assert_true(c.rope_scaling.original_max_position_embeddings == 4096); /* transformers' fallback */
    free(j);

    /* Overflowing the buffer ends the list with "...". */
    j = edited("models/qwen3-tiny", NULL);
    cJSON *root = cJSON_Parse(j);
    free(j);
    for (int i = 0; i < 200; i++) {
        char k[32];
        snprintf(k, sizeof k, "extra_key_%03d", i);
        cJSON_AddNumberToObject(root, k, i);
    }
    j = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    assert_int_equal(parse(j, &c, &err), QP_OK);
    size_t n = strlen(c.unknown_keys);
    assert_true(n < sizeof c.unknown_keys);
    assert_string_equal(c.unknown_keys + n - 3, "...");
    assert_non_null(strstr(c.unknown_keys, "extra_key_000,extra_key_001"));
    free(j);
}

static void test_fp8_and_misc(void **state)
{
    (void)state;
    qp_hf_config c;
    qp_err err;
    char *j = edited("models/qwen3-tiny", "quantization_config",
                     "{\"quant_method\":\"fp8\",\"activation_scheme\":\"dynamic\",\"fmt\":\"e4m3\","
                     "\"weight_block_size\":[128,128]}",
                     "head_dim", NULL, "num_key_value_heads", NULL, "eos_token_id", "[7, 9]", NULL);
    assert_int_equal(parse(j, &c, &err), QP_OK);
    assert_int_equal(c.fp8, 1);
    assert_int_equal(c.fp8_block[0], 128);
    assert_int_equal(c.fp8_block[1], 128);
    assert_int_equal(c.head_dim, 64);            /* hidden / heads */
    assert_int_equal(c.num_key_value_heads, 4); /* = heads */
    assert_int_equal(c.eos_token_id, 7);
    free(j);

    j = edited("models/qwen3-moe-tiny", "mlp_only_layers", "[0, 3]", "decoder_sparse_step", "2", NULL);
    assert_int_equal(parse(j, &c, &err), QP_OK);
    assert_int_equal(c.n_mlp_only_layers, 2);
    assert_int_equal(c.mlp_only_layers[1], 3);
    assert_int_equal(c.decoder_sparse_step, 2);
    free(j);
}

static void test_generation_config(void **state)
{
    (void)state;
    char dir[4096], p[4200];
    snprintf(dir, sizeof dir, "%s/gen", g_tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    size_t len;
    char *cfg = qp_test_read_file(qp_fixture("models/qwen3-tiny/config.json"), &len);
    assert_non_null(cfg);
    snprintf(p, sizeof p, "%s/config.json", dir);
    assert_int_equal(qp_test_write_file(p, cfg, len), 0);
    free(cfg);
    snprintf(p, sizeof p, "%s/generation_config.json", dir);
    const char *gen = "{\"bos_token_id\": 1, \"eos_token_id\": [5, 6], \"pad_token_id\": 2, \"do_sample\": true}";
    assert_int_equal(qp_test_write_file(p, gen, strlen(gen)), 0);
    qp_hf_config c;
    qp_err err;
    qp_err_clear(&err);
    assert_int_equal(qp_hf_config_load(dir, &c, &err), QP_OK);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.eos_token_id, 5);
    assert_int_equal(c.pad_token_id, 2);

    const char *bad = "{\"eos_token_id\": \"</s>\"}";
    assert_int_equal(qp_test_write_file(p, bad, strlen(bad)), 0);
    check_err(qp_hf_config_load(dir, &c, &err), QP_ERR_BAD_INPUT, &err, "generation_config.json",
              "key \"eos_token_id\" must be a token id", "eos_token_id");
    assert_int_equal(qp_test_write_file(p, "{", 1), 0);
    check_err(qp_hf_config_load(dir, &c, &err), QP_ERR_BAD_INPUT, &err, "generation_config.json", "not valid JSON",
              NULL);
}

static void test_bad_configs(void **state)
{
    (void)state;
    qp_hf_config c;
    qp_err err;
    qp_err_clear(&err);

    /* Missing file. */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/empty", g_tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    check_err(qp_hf_config_load(dir, &c, &err), QP_ERR_IO, &err, "config.json", "No such file", NULL);

    /* Truncated, not an object, deep nesting. */
    char rel[] = "models/qwen3-tiny/config.json";
    size_t len;
    char *text = qp_test_read_file(qp_fixture(rel), &len);
    assert_non_null(text);
    check_err(qp_hf_config_parse(text, len / 2, "mem/config.json", &c, &err), QP_ERR_BAD_INPUT, &err, "mem/config.json",
              "not valid JSON", NULL);
    free(text);
    check_err(parse("[1]", &c, &err), QP_ERR_BAD_INPUT, &err, "mem/config.json", "not a JSON object", NULL);
    check_err(parse("{} {}", &c, &err), QP_ERR_BAD_INPUT, &err, "mem/config.json", "trailing bytes", NULL);
    check_err(parse("{\"architectures\":[\"Qwen3ForCausalLM\"],\"hidden_size\":1,\"hidden_size\":2}", &c, &err),
              QP_ERR_BAD_INPUT, &err, "mem/config.json", "key \"hidden_size\" appears twice", "hidden_size");
    char *deep = malloc(100001);
    assert_non_null(deep);
    memset(deep, '[', 100000);
    deep[100000] = '\0';
    check_err(parse(deep, &c, &err), QP_ERR_BAD_INPUT, &err, "mem/config.json", "not valid JSON", NULL);
    free(deep);

    /* One edit each: (key, value, status, expected words, key named). */
    static const struct {
        const char *model, *key, *val;
        qp_status st;
        const char *problem, *named;
    } cases[] = {
        {"models/qwen3-tiny", "hidden_size", "\"256\"", QP_ERR_BAD_INPUT, "key \"hidden_size\" must be an integer, got a string", "hidden_size"},
        {"models/qwen3-tiny", "hidden_size", "256.5", QP_ERR_BAD_INPUT, "must be an integer, got 256.5", "hidden_size"},
        {"models/qwen3-tiny", "hidden_size", NULL, QP_ERR_BAD_INPUT, "key \"hidden_size\" is missing", "hidden_size"},
        {"models/qwen3-tiny", "num_hidden_layers", "-1", QP_ERR_BAD_INPUT, "= -1 is out of range", "num_hidden_layers"},
        {"models/qwen3-tiny", "num_attention_heads", "0", QP_ERR_BAD_INPUT, "= 0 is out of range", "num_attention_heads"},
        {"models/qwen3-tiny", "vocab_size", "1e30", QP_ERR_BAD_INPUT, "must be an integer", "vocab_size"},
        {"models/qwen3-tiny", "hidden_size", "2097152", QP_ERR_BAD_INPUT, "out of range", "hidden_size"},
        {"models/qwen3-tiny", "num_key_value_heads", "3", QP_ERR_BAD_INPUT, "must divide num_attention_heads", "num_key_value_heads"},
        {"models/qwen3-tiny", "rms_norm_eps", "-1e-6", QP_ERR_BAD_INPUT, "out of range", "rms_norm_eps"},
        {"models/qwen3-tiny", "rope_theta", "\"1e6\"", QP_ERR_BAD_INPUT, "must be a number, got a string", "rope_theta"},
        {"models/qwen3-tiny", "tie_word_embeddings", "1", QP_ERR_BAD_INPUT, "must be true or false", "tie_word_embeddings"},
        {"models/qwen3-tiny", "torch_dtype", "16", QP_ERR_BAD_INPUT, "must be a string", "torch_dtype"},
        {"models/qwen3-tiny", "bos_token_id", "-3", QP_ERR_BAD_INPUT, "must be a token id", "bos_token_id"},
        {"models/qwen3-tiny", "architectures", "\"Qwen3ForCausalLM\"", QP_ERR_BAD_INPUT, "non-empty array", "architectures"},
        {"models/qwen3-tiny", "architectures", NULL, QP_ERR_BAD_INPUT, "key \"architectures\" is missing", "architectures"},
        {"models/qwen3-tiny", "architectures", "[\"LlamaForCausalLM\"]", QP_ERR_UNSUPPORTED, "architecture \"LlamaForCausalLM\" is not supported", "architectures"},
        {"models/qwen3-tiny", "hidden_act", "\"gelu\"", QP_ERR_UNSUPPORTED, "hidden_act", "hidden_act"},
        {"models/qwen3-tiny", "attention_bias", "true", QP_ERR_UNSUPPORTED, "biased", "attention_bias"},
        {"models/qwen3-tiny", "use_sliding_window", "true", QP_ERR_UNSUPPORTED, "sliding-window", "use_sliding_window"},
        {"models/qwen3-tiny", "layer_types", "[\"sliding_attention\"]", QP_ERR_UNSUPPORTED, "not \"full_attention\"", "layer_types"},
        {"models/qwen3-tiny", "rope_scaling", "{\"type\":\"longrope\",\"factor\":2}", QP_ERR_UNSUPPORTED, "RoPE scaling type", "rope_scaling.type"},
        {"models/qwen3-tiny", "rope_scaling", "{\"type\":\"yarn\"}", QP_ERR_BAD_INPUT, "is missing for a scaled RoPE", "rope_scaling.factor"},
        {"models/qwen3-tiny", "rope_scaling", "[1]", QP_ERR_BAD_INPUT, "must be an object", "rope_scaling"},
        {"models/qwen3-tiny", "quantization_config", "{\"quant_method\":\"gptq\"}", QP_ERR_UNSUPPORTED, "not \"fp8\"", "quantization_config.quant_method"},
        {"models/qwen3-tiny", "quantization_config", "{\"quant_method\":\"fp8\",\"weight_block_size\":[128]}", QP_ERR_BAD_INPUT, "two positive integers", "quantization_config.weight_block_size"},
        {"models/qwen3-moe-tiny", "num_experts_per_tok", "17", QP_ERR_BAD_INPUT, "= 17 is out of range [1, 16]", "num_experts_per_tok"},
        {"models/qwen3-moe-tiny", "num_experts", NULL, QP_ERR_BAD_INPUT, "key \"num_experts\" is missing", "num_experts"},
        {"models/qwen3-moe-tiny", "num_experts", "-16", QP_ERR_BAD_INPUT, "out of range", "num_experts"},
        {"models/qwen3-moe-tiny", "moe_intermediate_size", "\"big\"", QP_ERR_BAD_INPUT, "must be an integer", "moe_intermediate_size"},
        {"models/qwen3-moe-tiny", "norm_topk_prob", "\"yes\"", QP_ERR_BAD_INPUT, "must be true or false", "norm_topk_prob"},
        {"models/qwen3-moe-tiny", "mlp_only_layers", "[4]", QP_ERR_BAD_INPUT, "[0, num_hidden_layers)", "mlp_only_layers"},
        {"models/qwen3-moe-tiny", "decoder_sparse_step", "0", QP_ERR_BAD_INPUT, "out of range", "decoder_sparse_step"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *j = edited(cases[i].model, cases[i].key, cases[i].val, NULL);
        check_err(parse(j, &c, &err), cases[i].st, &err, "mem/config.json", cases[i].problem, cases[i].named);
        free(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_fixture),
        cmocka_unit_test(test_moe_fixture),
        cmocka_unit_test(test_omni_fixture),
        cmocka_unit_test(test_transformers5_spelling),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_fp8_and_misc),
        cmocka_unit_test(test_generation_config),
        cmocka_unit_test(test_bad_configs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
