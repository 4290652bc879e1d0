/* qp_json.c - cJSON parsing with allocation failures told apart (see
 * qp_json.h). */
#include "format/qp_json.h"

#include <stdlib.h>

static _Thread_local int t_alloc_failed;

static void *hook_malloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        t_alloc_failed = 1;
    return p;
}

/* Installed before main(), so no thread can be inside cJSON while the
 * global hooks change. */
__attribute__((constructor)) static void install_hooks(void)
{
    cJSON_Hooks h = {hook_malloc, free};
    cJSON_InitHooks(&h);
}

cJSON *qp_json_parse(const char *text, size_t len, const char **end, int *oom)
{
    t_alloc_failed = 0;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, end, 0);
    *oom = root == NULL && t_alloc_failed;
    return root;
}
