/* imatrix_uniform.c - llama.cpp's treatment of under-covered experts, for
 * the quality table (tests/bench/imatrix_kld.sh, row b).
 *
 *   imatrix_uniform IN.gguf OUT.gguf [MIN_TOKENS]
 *
 * Copies an importance matrix, clearing (sums 0, count 0) every expert of
 * a stacked entry that saw fewer than MIN_TOKENS (default 256) tokens, so
 * that convert quantizes those experts with uniform importances (as
 * llama-quantize does for experts without data). Use it on a matrix made
 * with `qpack calibrate --min-expert-tokens 0` (routed counts only). */
#include <stdio.h>
#include <stdlib.h>

#include "format/imatrix.h"
#include "format/imatrix_ext.h"

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: imatrix_uniform IN.gguf OUT.gguf [MIN_TOKENS]\n");
        return 2;
    }
    const double min = argc == 4 ? atof(argv[3]) : 256.0;
    qp_err err;
    qp_err_clear(&err);
    qp_imatrix *m = NULL;
    if (qp_imatrix_read(argv[1], &m, &err) != QP_OK) {
        char buf[512];
        qp_err_format(&err, buf, sizeof buf);
        fprintf(stderr, "imatrix_uniform: %s\n", buf);
        return 2;
    }
    int64_t cleared = 0, max_in = 1;
    for (int64_t e = 0; e < qp_imatrix_count(m); e++)
        if (qp_imatrix_n_in(m, e) > max_in)
            max_in = qp_imatrix_n_in(m, e);
    double *zero = calloc((size_t)max_in, sizeof *zero);
    qp_status st = zero ? QP_OK : QP_ERR_NOMEM;
    for (int64_t e = 0; st == QP_OK && e < qp_imatrix_count(m); e++) {
        if (qp_imatrix_n_expert(m, e) < 2)
            continue;
        for (int64_t x = 0; st == QP_OK && x < qp_imatrix_n_expert(m, e); x++)
            if (qp_imatrix_rows(m, e, x) < min) {
                st = qp_imatrix_set(m, e, x, zero, 0.0, &err);
                cleared++;
            }
    }
    if (st == QP_OK)
        st = qp_imatrix_write(m, argv[2], &err);
    if (st != QP_OK) {
        char buf[512];
        qp_err_format(&err, buf, sizeof buf);
        fprintf(stderr, "imatrix_uniform: %s\n", buf);
    } else {
        printf("%s: %lld expert rows under %.0f tokens set to uniform\n", argv[2], (long long)cleared, min);
    }
    free(zero);
    qp_imatrix_free(m);
    return st == QP_OK ? 0 : 1;
}
