/* omni_tokens.c - the integer settings of a Qwen3-Omni config, checked
 * against the vocabularies they index.
 *
 * Text-token ids (*_token_id) are looked up by their string in
 * tokenizer.json where the string is known: a checkpoint whose config was
 * copied from a bigger model (the tiny fixture keeps the real ids, 151644...)
 * still gets ids that exist. An id neither the tokenizer nor the vocabulary
 * can back is left out with a note, never an error. Codec ids are checked
 * against the talker's codec vocabulary the same way. */
#include "convert/omni_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/hfc_json.h"

/* Strings of the ids whose meaning is unambiguous across Qwen releases. */
static const struct {
    const char *key;
    const char *str;
} TOKEN_STRINGS[] = {
    {"im_start_token_id", "<|im_start|>"},
    {"im_end_token_id", "<|im_end|>"},
    {"system_token_id", "system"},
    {"user_token_id", "user"},
    {"assistant_token_id", "assistant"},
    {"thinker.user_token_id", "user"},
    {"thinker.image_token_id", "<|image_pad|>"},
    {"thinker.video_token_id", "<|video_pad|>"},
    {"thinker.audio_token_id", "<|audio_pad|>"},
    {"thinker.audio_start_token_id", "<|audio_start|>"},
    {"talker.image_token_id", "<|image_pad|>"},
    {"talker.video_token_id", "<|video_pad|>"},
    {"talker.audio_token_id", "<|audio_pad|>"},
    {"talker.vision_start_token_id", "<|vision_start|>"},
};

static int64_t vocab_find(const qp_hf_vocab *v, const char *s)
{
    for (int64_t i = 0; i < v->n_added; i++) {
        int64_t id = v->added_ids[i];
        if (id >= 0 && id < v->n_tokens && v->tokens[id] && strcmp(v->tokens[id], s) == 0)
            return id;
    }
    for (int64_t id = 0; id < v->n_tokens; id++)
        if (v->tokens[id] && strcmp(v->tokens[id], s) == 0)
            return id;
    return -1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static qp_status add_meta(qp_omni_job *job, qp_omni_file f, const char *key, int64_t v, qp_err *err)
{
    if (job->n_meta_ints[f] == QP_OMNI_MAX_IDS)
        return qp_err_set(err, QP_ERR_UNSUPPORTED, job->dir, "too many integer settings");
    qp_omni_int *d = &job->meta_ints[f][job->n_meta_ints[f]++];
    snprintf(d->key, sizeof d->key, "%.79s", key);
    d->value = v;
    return QP_OK;
}

/* The id to write for a text token, or -1 (with a note) for none. */
static int64_t resolve_text_id(qp_omni_job *job, const qp_hf_vocab *v, const char *key, int64_t value)
{
    const char *str = NULL;
    for (size_t i = 0; i < sizeof TOKEN_STRINGS / sizeof TOKEN_STRINGS[0]; i++)
        if (strcmp(TOKEN_STRINGS[i].key, key) == 0)
            str = TOKEN_STRINGS[i].str;
    int64_t n_vocab = job->cfg.thinker.vocab_size;
    int64_t sid = str ? vocab_find(v, str) : -1;
    int in_vocab = value < n_vocab && (value >= v->n_tokens || v->tokens[value]);
    if (sid >= 0) {
        if (sid != value)
            qp_omni_note(&job->notes, "config.json: %s = %lld, but tokenizer.json has %s as token %lld; using %lld",
                         key, (long long)value, str, (long long)sid, (long long)sid);
        return sid;
    }
    if (in_vocab) {
        if (str)
            qp_omni_note(&job->notes, "config.json: %s: %s is not in tokenizer.json; keeping the config's %lld", key,
                         str, (long long)value);
        return value;
    }
    qp_omni_note(&job->notes, "config.json: %s = %lld is outside the %lld-token vocabulary%s%s%s; not written", key,
                 (long long)value, (long long)n_vocab, str ? " and " : "", str ? str : "",
                 str ? " is not in tokenizer.json" : "");
    return -1;
}

/* image_mean / image_std from preprocessor_config.json, else the
 * Qwen3-VL image processor's defaults (0.5, 0.5, 0.5). */
static qp_status image_stats(qp_omni_job *job, qp_err *err)
{
    for (int i = 0; i < 3; i++)
        job->image_mean[i] = job->image_std[i] = 0.5f;
    char path[4096];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", job->dir);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        qp_omni_note(&job->notes, "no preprocessor_config.json: clip.vision.image_mean/std set to Qwen3-VL's "
                                  "defaults (0.5, 0.5, 0.5)");
        return QP_OK;
    }
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    qp_status s = hfc_read_file(path, (size_t)16 << 20, &text, &len, err);
    if (s == QP_OK)
        s = hfc_parse_text(text, len, path, &root, err);
    free(text);
    static const char *const KEYS[2] = {"image_mean", "image_std"};
    float *dst[2] = {job->image_mean, job->image_std};
    for (int k = 0; k < 2 && s == QP_OK; k++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, KEYS[k]);
        if (!a || cJSON_IsNull(a))
            continue;
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) {
            s = hfc_err(err, QP_ERR_BAD_INPUT, path, KEYS[k], "must be an array of 3 numbers");
            break;
        }
        int i = 0;
        for (const cJSON *it = a->child; it; it = it->next, i++) {
            if (!cJSON_IsNumber(it) || !(it->valuedouble > -1e6 && it->valuedouble < 1e6)) {
                s = hfc_err(err, QP_ERR_BAD_INPUT, path, KEYS[k], "must be an array of 3 numbers");
                break;
            }
            dst[k][i] = (float)it->valuedouble;
        }
    }
    cJSON_Delete(root);
    return s;
}

qp_status omni_resolve_ids(qp_omni_job *job, qp_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", job->dir);
    qp_hf_vocab v;
    memset(&v, 0, sizeof v);
    qp_status s = qp_hf_vocab_load(path, &v, err);
    if (s != QP_OK)
        return s;
    job->im_end_id = vocab_find(&v, "<|im_end|>");
    if (job->im_end_id < 0)
        qp_omni_note(&job->notes, "tokenizer.json has no <|im_end|>: BOS/EOS keep tokenizer_config.json's ids");
    const qp_omni_config *c = &job->cfg;
    for (int i = 0; i < c->n_ints && s == QP_OK; i++) {
        const char *key = c->ints[i].key;
        int64_t value = c->ints[i].value;
        qp_omni_file f = strncmp(key, "thinker.", 8) == 0 ? QP_OMNI_FILE_MMPROJ : QP_OMNI_FILE_TALKER;
        const char *rest = f == QP_OMNI_FILE_MMPROJ ? key + 8 : strncmp(key, "talker.", 7) == 0 ? key + 7 : key;
        char out[80];
        snprintf(out, sizeof out, "%.15s.%.60s", f == QP_OMNI_FILE_MMPROJ ? "qwen3omni" : "qwen3omnitalker", rest);
        if (strncmp(rest, "codec_", 6) == 0 || strncmp(rest, "speaker_id.", 11) == 0) {
            if (value >= c->talker.vocab_size) {
                qp_omni_note(&job->notes, "config.json: %s = %lld is outside the talker's %lld-entry codec "
                                          "vocabulary; not written", key, (long long)value,
                             (long long)c->talker.vocab_size);
                value = -1;
            }
        } else if (ends_with(key, "_token_id")) {
            value = resolve_text_id(job, &v, key, value);
        }
        if (value >= 0)
            s = add_meta(job, f, out, value, err);
    }
    qp_hf_vocab_free(&v);
    if (s == QP_OK)
        s = image_stats(job, err);
    return s;
}
