/* qp_cpu.h - CPU feature detection for run-time kernel dispatch.
 *
 * Detected once; `qp_cpu_force_scalar(1)` (the CLI's --kernel=scalar, and the
 * tests comparing twins) makes every dispatcher pick the portable path. */
#ifndef QP_CPU_H
#define QP_CPU_H

typedef struct {
    int avx2;   /* AVX2 + FMA + F16C all present and OS-enabled */
} qp_cpu_features;

/* The features of this CPU, or all-zero when scalar is forced. Thread-safe
 * after the first call (the first call should happen before threads start). */
qp_cpu_features qp_cpu_get(void);

/* Raw detection, ignoring any forcing. */
qp_cpu_features qp_cpu_detect(void);

void qp_cpu_force_scalar(int on);

#endif
