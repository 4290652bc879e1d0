/* qp_checked.h - overflow-checked size arithmetic for parsers.
 * Each returns 1 on success (result stored), 0 on overflow. */
#ifndef QP_CHECKED_H
#define QP_CHECKED_H

#include <stdint.h>

static inline int qp_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static inline int qp_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}

/* Round `v` up to a multiple of `align` (a power of two). */
static inline int qp_align_u64(uint64_t v, uint64_t align, uint64_t *out)
{
    uint64_t t;
    if (align == 0 || (align & (align - 1)) != 0)
        return 0;
    if (!qp_add_u64(v, align - 1, &t))
        return 0;
    *out = t & ~(align - 1);
    return 1;
}

#endif
