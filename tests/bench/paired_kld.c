/* paired_kld.c - paired comparison of two per-token KLD files written by
 * `qpack ppl ... --save-token-kld FILE` on the same text and base.
 *
 *   paired_kld A.f32 B.f32 [LABEL_A LABEL_B]
 *
 * Prints mean KLD of each with its standard error, and the mean of the
 * per-token differences d_t = KLD_A,t - KLD_B,t with the standard error of
 * that mean (sd(d) / sqrt(N)): the two quantizations see the same tokens,
 * so the paired error is much smaller than the two unpaired ones combined.
 * Also the ratio of the means and how many standard errors the difference
 * is from zero. Exit 2 when the files differ in length or cannot be read. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float *read_f32(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "paired_kld: %s: cannot open\n", path);
        return NULL;
    }
    float *v = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long bytes = ftell(f);
        if (bytes > 0 && bytes % 4 == 0 && fseek(f, 0, SEEK_SET) == 0 && (v = malloc((size_t)bytes))) {
            *n = bytes / 4;
            if (fread(v, 4, (size_t)*n, f) != (size_t)*n) {
                free(v);
                v = NULL;
            }
        }
    }
    fclose(f);
    if (!v)
        fprintf(stderr, "paired_kld: %s: not a non-empty file of f32 values\n", path);
    return v;
}

static void mean_se(const double *s, long n, double *mean, double *se)
{
    *mean = s[0] / (double)n;
    const double var = n > 1 ? (s[1] - (double)n * *mean * *mean) / (double)(n - 1) : 0.0;
    *se = var > 0 ? sqrt(var / (double)n) : 0.0;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: paired_kld A.f32 B.f32 [LABEL_A LABEL_B]\n");
        return 2;
    }
    const char *la = argc == 5 ? argv[3] : "A", *lb = argc == 5 ? argv[4] : "B";
    long na = 0, nb = 0;
    float *a = read_f32(argv[1], &na), *b = a ? read_f32(argv[2], &nb) : NULL;
    if (!a || !b || na != nb) {
        if (a && b)
            fprintf(stderr, "paired_kld: %ld vs %ld tokens: not the same evaluation\n", na, nb);
        free(a);
        free(b);
        return 2;
    }
    double sa[2] = {0, 0}, sb[2] = {0, 0}, sd[2] = {0, 0};
    for (long t = 0; t < na; t++) {
        const double x = a[t], y = b[t], d = x - y;
        sa[0] += x, sa[1] += x * x;
        sb[0] += y, sb[1] += y * y;
        sd[0] += d, sd[1] += d * d;
    }
    double ma, ea, mb, eb, md, ed;
    mean_se(sa, na, &ma, &ea);
    mean_se(sb, nb, &mb, &eb);
    mean_se(sd, na, &md, &ed);
    printf("%-10s %-12s %-12s\n", "", "mean KLD", "std. error");
    printf("%-10s %-12.6f %-12.6f\n", la, ma, ea);
    printf("%-10s %-12.6f %-12.6f\n", lb, mb, eb);
    printf("tokens %ld; %s - %s = %.6f +- %.6f (paired), %.1f standard errors; ratio %s/%s = %.4f\n", na, la, lb, md,
           ed, ed > 0 ? md / ed : 0.0, lb, la, ma > 0 ? mb / ma : 0.0);
    free(a);
    free(b);
    return 0;
}
