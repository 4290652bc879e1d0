/* conventions.c - see conventions.h. The .md lines look like
 *   - `qwen3.block_count`: UINT32 4
 *   - `tokenizer.ggml.tokens`: ARRAY[STRING] n=8192 first=['!', '"', '#']
 *   - `blk.0.ffn_down.weight` ne=[768, 256] BF16                         */
#include "support/conventions.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/qp_ggml_types.h"
#include "support/qp_test.h"

static int str_eq(qp_gguf_str s, const char *c, size_t n)
{
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

/* Python-repr list of strings "['a', 'b']" -> compare with first elements. */
static int check_first_strings(const qp_gguf *g, int64_t k, const char *list)
{
    const char *p = strchr(list, '[');
    uint64_t j = 0;
    if (!p)
        return 1;
    p++;
    while (*p && *p != ']') {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p != '\'' && *p != '"')
            break;
        char q = *p++;
        char buf[256];
        size_t n = 0;
        while (*p && *p != q && n < sizeof buf - 1) {
            if (*p == '\\' && p[1]) {
                p++;
            }
            buf[n++] = *p++;
        }
        if (*p == q)
            p++;
        qp_gguf_str s = qp_gguf_arr_str(g, k, j);
        if (!str_eq(s, buf, n)) {
            print_error("array element %llu: want '%s' got '%.*s'\n", (unsigned long long)j, buf, (int)s.len, s.ptr);
            return 1;
        }
        j++;
    }
    return 0;
}

static int check_first_ints(const qp_gguf *g, int64_t k, const char *list)
{
    const char *p = strchr(list, '[');
    if (!p)
        return 1;
    const unsigned char *d = qp_gguf_arr_data(g, k); /* elements are not aligned in the file */
    uint64_t j = 0;
    p++;
    while (*p && *p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        int32_t e = 0;
        if (d && j < qp_gguf_arr_len(g, k))
            memcpy(&e, d + 4 * j, 4);
        if (!d || j >= qp_gguf_arr_len(g, k) || e != v) {
            print_error("int array element %llu differs\n", (unsigned long long)j);
            return 1;
        }
        j++;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

static int check_kv(const qp_gguf *g, const char *key, const char *type, const char *value)
{
    int64_t k = qp_gguf_find_key(g, key);
    if (k < 0) {
        print_error("missing key %s\n", key);
        return 1;
    }
    qp_gguf_vtype vt = qp_gguf_kv_type(g, k);
    if (strncmp(type, "ARRAY[", 6) == 0) {
        char et[32];
        sscanf(type + 6, "%31[A-Z0-9]", et);
        if (vt != QP_GGUF_ARRAY || strcmp(qp_gguf_vtype_name(qp_gguf_arr_type(g, k)), et) != 0) {
            print_error("key %s: want %s\n", key, type);
            return 1;
        }
        const char *np = strstr(value, "n=");
        if (np && strtoull(np + 2, NULL, 10) != qp_gguf_arr_len(g, k)) {
            print_error("key %s: want n=%s got %llu\n", key, np + 2, (unsigned long long)qp_gguf_arr_len(g, k));
            return 1;
        }
        const char *fp = strstr(value, "first=");
        if (fp && strcmp(et, "STRING") == 0)
            return check_first_strings(g, k, fp);
        if (fp)
            return check_first_ints(g, k, fp);
        return 0;
    }
    if (strcmp(qp_gguf_vtype_name(vt), type) != 0) {
        print_error("key %s: want type %s got %s\n", key, type, qp_gguf_vtype_name(vt));
        return 1;
    }
    if (value[0] == '(')
        return 0; /* verbatim text, presence and type only */
    if (vt == QP_GGUF_STRING) {
        size_t n = strlen(value);
        if (n < 2 || value[0] != '\'' || value[n - 1] != '\'') {
            print_error("key %s: cannot parse expected string %s\n", key, value);
            return 1;
        }
        if (!str_eq(qp_gguf_kv_str(g, k), value + 1, n - 2)) {
            qp_gguf_str s = qp_gguf_kv_str(g, k);
            print_error("key %s: want %s got '%.*s'\n", key, value, (int)s.len, s.ptr);
            return 1;
        }
        return 0;
    }
    if (vt == QP_GGUF_BOOL) {
        uint64_t v = 2;
        qp_gguf_kv_as_u64(g, k, &v);
        int want = strcmp(value, "True") == 0;
        if ((int)v != want) {
            print_error("key %s: want %s\n", key, value);
            return 1;
        }
        return 0;
    }
    if (vt == QP_GGUF_F32 || vt == QP_GGUF_F64) {
        double d = 0, want = strtod(value, NULL);
        qp_gguf_kv_as_f64(g, k, &d);
        if ((float)d != (float)want) {
            print_error("key %s: want %s got %.17g\n", key, value, d);
            return 1;
        }
        return 0;
    }
    uint64_t v = 0;
    qp_gguf_kv_as_u64(g, k, &v);
    if (v != strtoull(value, NULL, 10)) {
        print_error("key %s: want %s got %llu\n", key, value, (unsigned long long)v);
        return 1;
    }
    return 0;
}

static int check_tensor(const qp_gguf *g, const char *name, const char *ne_list, const char *type)
{
    const qp_gguf_tensor *t = qp_gguf_find_tensor(g, name);
    if (!t) {
        print_error("missing tensor %s\n", name);
        return 1;
    }
    int64_t ne[4] = {1, 1, 1, 1};
    int nd = 0;
    const char *p = ne_list;
    while (*p && nd < 4) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p)
            break;
        ne[nd++] = v;
        p = end;
        while (*p == ',' || *p == ' ')
            p++;
    }
    int bad = (int)t->n_dims != nd || strcmp(qp_ggml_type_name(t->type), type) != 0;
    for (int i = 0; i < 4; i++)
        bad |= t->ne[i] != ne[i];
    if (bad)
        print_error("tensor %s: want ne=[%s] %s, got %u dims type %s\n", name, ne_list, type, t->n_dims,
                    qp_ggml_type_name(t->type));
    return bad;
}

int qp_conventions_compare(const char *md_path, const qp_gguf *g)
{
    FILE *f = fopen(md_path, "r");
    if (!f) {
        print_error("cannot open %s\n", md_path);
        return 1;
    }
    char line[4096];
    int diffs = 0, n_tensors = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "- `", 3) != 0)
            continue;
        char *name = line + 3, *tick = strchr(name, '`');
        if (!tick)
            continue;
        *tick = '\0';
        char *rest = tick + 1;
        if (strncmp(rest, ": ", 2) == 0) {
            rest += 2;
            char *sp = strchr(rest, ' ');
            if (!sp)
                continue;
            *sp = '\0';
            diffs += check_kv(g, name, rest, sp + 1);
        } else if (strncmp(rest, " ne=[", 5) == 0) {
            char *close = strchr(rest, ']');
            if (!close)
                continue;
            *close = '\0';
            diffs += check_tensor(g, name, rest + 5, close + 2);
            n_tensors++;
        }
    }
    fclose(f);
    if (n_tensors != qp_gguf_tensor_count(g)) {
        print_error("%d tensors expected, file has %lld\n", n_tensors, (long long)qp_gguf_tensor_count(g));
        diffs++;
    }
    return diffs;
}
