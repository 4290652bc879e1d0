/* hfc_json.h - typed, range-checked reads of config.json values for
 * hf_config.c (internal). Every failure names the key in the message and in
 * qp_err.tensor. Absent and null keys leave the output at its default. */
#ifndef QP_HFC_JSON_H
#define QP_HFC_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"
#include "format/hf_config.h"

/* `dflt` for a key that must be present. */
#define HFC_REQUIRED INT64_MIN

/* "key "<key>" <what>" with `status`; returns `status`. */
qp_status hfc_err(qp_err *err, qp_status status, const char *path, const char *key, const char *what);

/* A JSON number holding an integer of magnitude <= 2^53. */
int hfc_number_int(const cJSON *v, int64_t *out);

/* Integer key in [lo, hi]; absent/null -> dflt (HFC_REQUIRED: error). */
qp_status hfc_int(const cJSON *obj, const char *key, const char *path, int64_t lo, int64_t hi, int64_t dflt,
                  int64_t *out, qp_err *err);
/* Finite number in (lo, hi]; absent/null -> dflt. */
qp_status hfc_double(const cJSON *obj, const char *key, const char *path, double lo, double hi, double dflt,
                     double *out, qp_err *err);
/* true/false; absent/null -> *out unchanged. */
qp_status hfc_bool(const cJSON *obj, const char *key, const char *path, int *out, qp_err *err);
/* String shorter than `size`; absent/null -> buf unchanged. */
qp_status hfc_string(const cJSON *obj, const char *key, const char *path, char *buf, size_t size, qp_err *err);

/* Parse JSON text (need not be NUL-terminated); only whitespace may follow
 * the value. */
qp_status hfc_parse_text(const char *json, size_t len, const char *path, cJSON **out, qp_err *err);
/* Python's json keeps the last of repeated keys and cJSON the first: a
 * config with a repeated top-level key would mean different things to
 * transformers and to us, so it is refused. */
qp_status hfc_check_unique_keys(const cJSON *obj, const char *path, qp_err *err);
/* Read a whole regular file of at most `max` bytes, NUL-terminated. */
qp_status hfc_read_file(const char *path, size_t max, char **text, size_t *len, qp_err *err);

/* rope_theta / rope_scaling (transformers 4) and rope_parameters
 * (transformers 5) into cfg->rope_theta and cfg->rope_scaling. Needs
 * cfg->max_position_embeddings already set. Unknown sub-keys go to
 * cfg->unknown_keys as "rope_scaling.<key>". */
qp_status hfc_rope(const cJSON *root, const char *path, qp_hf_config *cfg, qp_err *err);
/* Append to cfg->unknown_keys (comma-separated, "..." when full). */
void hfc_add_unknown(qp_hf_config *cfg, const char *key);

#endif
