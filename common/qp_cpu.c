/* qp_cpu.c - CPUID/XGETBV probing (x86-64), a portable answer elsewhere. */
#include "common/qp_cpu.h"

#include <pthread.h>
#include <stdatomic.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long read_xcr0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

qp_cpu_features qp_cpu_detect(void)
{
    qp_cpu_features f = {0};
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(osxsave && avx && fma && f16c))
        return f;
    if ((read_xcr0() & 6) != 6) /* XMM and YMM state saved by the OS */
        return f;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return f;
    f.avx2 = (b >> 5) & 1;
    return f;
}
#else
qp_cpu_features qp_cpu_detect(void)
{
    qp_cpu_features f = {0};
    return f;
}
#endif

static atomic_int g_force_scalar; /* the one mutable global: a kernel-table switch */

/* CPUID is slow in virtual machines and qp_cpu_get() sits on hot paths:
 * detect once. */
static qp_cpu_features g_detected;
static pthread_once_t g_detect_once = PTHREAD_ONCE_INIT;

static void detect_once(void) { g_detected = qp_cpu_detect(); }

void qp_cpu_force_scalar(int on) { atomic_store(&g_force_scalar, on ? 1 : 0); }

qp_cpu_features qp_cpu_get(void)
{
    if (atomic_load(&g_force_scalar)) {
        qp_cpu_features none = {0};
        return none;
    }
    pthread_once(&g_detect_once, detect_once);
    return g_detected;
}
