/* hfc_rope.c - RoPE settings of config.json in both spellings:
 *   transformers 4: "rope_theta": 1e6, "rope_scaling": {"type"|"rope_type", "factor", ...}
 *   transformers 5: "rope_parameters": {"rope_type", "rope_theta", "factor", ...}
 * Both land in cfg->rope_theta and cfg->rope_scaling; when both spellings
 * are present they must agree. */
#include "format/hfc_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Scaling types the converter knows how to express in GGUF. */
static const char *const ROPE_TYPES[] = {"linear", "dynamic", "yarn"};

typedef struct {
    char type[32];
    double theta; /* 0 if absent */
    qp_rope_scaling s;
} rope_obj;

static qp_status parse_obj(const cJSON *o, const char *key, const char *path, rope_obj *r, qp_hf_config *cfg,
                           qp_err *err)
{
    char sub[160];
    if (!cJSON_IsObject(o))
        return hfc_err(err, QP_ERR_BAD_INPUT, path, key, "must be an object or null");
    for (const cJSON *it = o->child; it; it = it->next) {
        const char *k = it->string;
        snprintf(sub, sizeof sub, "%s.%.100s", key, k);
        double *dst = NULL;
        if (strcmp(k, "type") == 0 || strcmp(k, "rope_type") == 0) {
            if (!cJSON_IsString(it))
                return hfc_err(err, QP_ERR_BAD_INPUT, path, sub, "must be a string");
            if (strlen(it->valuestring) >= sizeof r->type)
                return hfc_err(err, QP_ERR_BAD_INPUT, path, sub, "is too long");
            if (r->type[0] && strcmp(r->type, it->valuestring) != 0)
                return hfc_err(err, QP_ERR_BAD_INPUT, path, sub, "disagrees with the other rope type key");
            snprintf(r->type, sizeof r->type, "%s", it->valuestring);
            continue;
        }
        if (strcmp(k, "rope_theta") == 0)
            dst = &r->theta;
        else if (strcmp(k, "factor") == 0)
            dst = &r->s.factor;
        else if (strcmp(k, "original_max_position_embeddings") == 0)
            dst = &r->s.original_max_position_embeddings;
        else if (strcmp(k, "attention_factor") == 0 || strcmp(k, "attn_factor") == 0)
            dst = &r->s.attn_factor;
        else if (strcmp(k, "beta_fast") == 0)
            dst = &r->s.beta_fast;
        else if (strcmp(k, "beta_slow") == 0)
            dst = &r->s.beta_slow;
        if (!dst) {
            /* mrope_section, low_freq_factor, ...: meaningful, but not for
             * the models we convert; say so instead of dropping them. */
            hfc_add_unknown(cfg, sub);
            continue;
        }
        if (cJSON_IsNull(it))
            continue;
        if (!cJSON_IsNumber(it) || !(it->valuedouble > 0) || !isfinite(it->valuedouble))
            return hfc_err(err, QP_ERR_BAD_INPUT, path, sub, "must be a positive number");
        *dst = it->valuedouble;
    }
    if (strcmp(r->type, "default") == 0)
        r->type[0] = '\0';
    return QP_OK;
}

qp_status hfc_rope(const cJSON *root, const char *path, qp_hf_config *cfg, qp_err *err)
{
    rope_obj r4, r5;
    memset(&r4, 0, sizeof r4);
    memset(&r5, 0, sizeof r5);
    qp_status st;
    double top_theta = 0;
    /* Upper bound only rejects nonsense; real values are 1e4..1e7. */
    if ((st = hfc_double(root, "rope_theta", path, 0.0, 1e12, 0.0, &top_theta, err)) != QP_OK)
        return st;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (rs && !cJSON_IsNull(rs) && (st = parse_obj(rs, "rope_scaling", path, &r4, cfg, err)) != QP_OK)
        return st;
    if (rp && !cJSON_IsNull(rp) && (st = parse_obj(rp, "rope_parameters", path, &r5, cfg, err)) != QP_OK)
        return st;

    double theta = top_theta ? top_theta : r4.theta;
    if (r5.theta) {
        if (theta && theta != r5.theta)
            return hfc_err(err, QP_ERR_BAD_INPUT, path, "rope_parameters.rope_theta", "disagrees with rope_theta");
        theta = r5.theta;
    }
    if (theta > 1e12)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "rope_theta", "is out of range");
    cfg->rope_theta = theta ? theta : 10000.0; /* transformers' default */

    if (r4.type[0] && r5.type[0] && strcmp(r4.type, r5.type) != 0)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, "rope_parameters.rope_type", "disagrees with rope_scaling");
    const rope_obj *r = r5.type[0] ? &r5 : &r4;
    if (!r->type[0])
        return QP_OK;
    int known = 0;
    for (size_t i = 0; i < sizeof ROPE_TYPES / sizeof ROPE_TYPES[0]; i++)
        known |= strcmp(r->type, ROPE_TYPES[i]) == 0;
    if (!known)
        return hfc_err(err, QP_ERR_UNSUPPORTED, path, r == &r5 ? "rope_parameters.rope_type" : "rope_scaling.type",
                       "names a RoPE scaling type that is not supported (linear, dynamic, yarn are)");
    if (r->s.factor <= 0)
        return hfc_err(err, QP_ERR_BAD_INPUT, path, r == &r5 ? "rope_parameters.factor" : "rope_scaling.factor",
                       "is missing for a scaled RoPE");
    cfg->rope_scaling = r->s;
    snprintf(cfg->rope_scaling.type, sizeof cfg->rope_scaling.type, "%s", r->type);
    /* transformers falls back to max_position_embeddings, so do we. */
    if (cfg->rope_scaling.original_max_position_embeddings == 0)
        cfg->rope_scaling.original_max_position_embeddings = (double)cfg->max_position_embeddings;
    return QP_OK;
}
