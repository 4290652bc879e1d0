/* stream_opts.c - --stream / --spill-limit / --tmpdir and the memory
 * report of a streamed run (see stream_opts.h). */
#include "cli/stream_opts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli.h"

void cli_stream_init(cli_stream *cs)
{
    memset(cs, 0, sizeof *cs);
    cs->opts.spill_limit = CLI_STREAM_DEFAULT_SPILL_LIMIT;
    cs->opts.zstd_level = 1;
}

int cli_stream_arg(cli_stream *cs, const char *cmd, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--stream") == 0) {
        cs->on = 1;
        return 1;
    }
    const int limit = strcmp(a, "--spill-limit") == 0, tmpdir = strcmp(a, "--tmpdir") == 0;
    if (!limit && !tmpdir)
        return 0;
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (tmpdir) {
        cs->opts.tmpdir = v;
        cs->tmpdir_given = 1;
        return 1;
    }
    unsigned long long n = 0;
    if (!cli_parse_size(v, &n)) {
        cli_usage_error(cmd, "--spill-limit wants a size such as 0, 512M or 8G, not '%s'", v);
        return -1;
    }
    cs->opts.spill_limit = n;
    cs->limit_given = 1;
    return 1;
}

int cli_stream_check(const cli_stream *cs, const char *cmd)
{
    if (!cs->on && (cs->limit_given || cs->tmpdir_given))
        return cli_usage_error(cmd, "%s only applies with --stream", cs->limit_given ? "--spill-limit" : "--tmpdir");
    return CLI_EXIT_OK;
}

qp_status cli_stream_open_model(const cli_stream *cs, const char *path, int n_threads, qp_rt_model **out,
                                qp_err *err)
{
    if (cs->on)
        return qp_rt_model_open_deferred(path, out, err);
    qp_status st = qp_rt_model_open(path, out, err);
    if (st == QP_OK && (st = qp_rt_model_prepack(*out, (uint64_t)2 << 30, n_threads, NULL, err)) != QP_OK) {
        qp_rt_model_free(*out);
        *out = NULL;
    }
    return st;
}

const qp_rt_stream_opts *cli_stream_opts(const cli_stream *cs) { return cs->on ? &cs->opts : NULL; }

static double mib(unsigned long long b) { return (double)b / (1024.0 * 1024.0); }

static unsigned long long peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (unsigned long long)ru.ru_maxrss * 1024ULL; /* Linux: KiB */
}

void cli_stream_report(const cli_stream *cs, const char *cmd)
{
    if (!cs->on)
        return;
    const qp_rt_stream_stats *s = &cs->stats;
    fprintf(stderr, "qpack %s: stream: %lld layers x %lld chunks of %lld; peak RSS %.1f MiB\n", cmd,
            (long long)s->n_layer, (long long)s->n_chunks, (long long)s->n_ctx, mib(peak_rss_bytes()));
    fprintf(stderr,
            "qpack %s: stream: engine peak %.1f MiB = largest layer %.1f MiB (embedding/output %.1f MiB) + "
            "activations %.1f MiB in memory + run state %.1f MiB",
            cmd, mib(s->peak_bytes), mib(s->layer_bytes), mib(s->embd_bytes), mib(s->act_ram_bytes),
            mib(s->state_bytes));
    if (s->spilled) {
        const char *dir = cs->opts.tmpdir ? cs->opts.tmpdir : getenv("TMPDIR");
        fprintf(stderr, "; activations spilled to %s (at most %.1f MiB zstd)", dir && dir[0] ? dir : "/tmp",
                mib(s->spill_peak_bytes));
    }
    fprintf(stderr, "\n");
}

void cli_stream_json(const cli_stream *cs, cJSON *o)
{
    if (!cs->on)
        return;
    const qp_rt_stream_stats *s = &cs->stats;
    cJSON *j = cJSON_AddObjectToObject(o, "stream");
    if (!j)
        return;
    cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)peak_rss_bytes());
    cJSON_AddNumberToObject(j, "engine_peak_bytes", (double)s->peak_bytes);
    cJSON_AddNumberToObject(j, "layer_bytes", (double)s->layer_bytes);
    cJSON_AddNumberToObject(j, "embd_bytes", (double)s->embd_bytes);
    cJSON_AddNumberToObject(j, "activation_ram_bytes", (double)s->act_ram_bytes);
    cJSON_AddNumberToObject(j, "state_bytes", (double)s->state_bytes);
    cJSON_AddBoolToObject(j, "spilled", s->spilled);
    cJSON_AddNumberToObject(j, "spill_bytes", (double)s->spill_peak_bytes);
}
