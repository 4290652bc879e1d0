/* seedgen.c - write the seed corpora (tests/support/fuzz_seeds.c) as files
 * OUTDIR/<target>/<name>, the layout libFuzzer takes as corpus dirs. */
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#include "support/fuzz_targets.h"

typedef struct {
    const char *out;
    int failed, count;
} gen;

static void write_seed(void *ctx, const char *target, const char *name, const void *data, size_t size)
{
    gen *g = ctx;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g->out, target);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        g->failed = 1;
        return;
    }
    snprintf(path, sizeof path, "%s/%s/%s", g->out, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        g->failed = 1;
        return;
    }
    g->count++;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: qp_fuzz_seedgen OUTDIR\n");
        return 2;
    }
    if (mkdir(argv[1], 0777) != 0 && errno != EEXIST) {
        perror(argv[1]);
        return 1;
    }
    gen g = {argv[1], 0, 0};
    int rc = qp_fuzz_seeds(write_seed, &g);
    if (rc != 0 || g.failed) {
        fprintf(stderr, "qp_fuzz_seedgen: could not write every seed (fixtures missing?)\n");
        return 1;
    }
    printf("%d seeds in %s\n", g.count, argv[1]);
    return 0;
}
