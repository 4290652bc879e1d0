/* qp_json.h - cJSON parsing that tells a failed allocation from bad text.
 *
 * cJSON returns NULL both for malformed JSON and when malloc fails, so a
 * parser calling it directly reports "not valid JSON" (exit 2, the user's
 * fault) when the machine ran out of memory (exit 1). This wrapper routes
 * cJSON's allocations through a hook that notes failures per thread. */
#ifndef QP_JSON_H
#define QP_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* cJSON_ParseWithLengthOpts(text, len, end, 0). When it returns NULL,
 * *oom is 1 if an allocation failed during the parse, else 0. */
cJSON *qp_json_parse(const char *text, size_t len, const char **end, int *oom);

#endif
