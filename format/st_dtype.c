/* st_dtype.c - safetensors dtypes: names, sizes, and conversion to f32. */
#include "format/safetensors.h"
#include "format/st_internal.h"

#include <string.h>

#include "common/qp_half.h"

static const struct {
    const char *name;
    uint32_t size;
    int is_float;
} DTYPES[QP_ST_DTYPE_COUNT] = {
    [QP_ST_F64] = {"F64", 8, 1},        [QP_ST_F32] = {"F32", 4, 1},
    [QP_ST_F16] = {"F16", 2, 1},        [QP_ST_BF16] = {"BF16", 2, 1},
    [QP_ST_I64] = {"I64", 8, 0},        [QP_ST_I32] = {"I32", 4, 0},
    [QP_ST_I16] = {"I16", 2, 0},        [QP_ST_I8] = {"I8", 1, 0},
    [QP_ST_U64] = {"U64", 8, 0},        [QP_ST_U32] = {"U32", 4, 0},
    [QP_ST_U16] = {"U16", 2, 0},        [QP_ST_U8] = {"U8", 1, 0},
    [QP_ST_BOOL] = {"BOOL", 1, 0},      [QP_ST_F8_E4M3] = {"F8_E4M3", 1, 1},
    [QP_ST_F8_E5M2] = {"F8_E5M2", 1, 1},
};

/* Dtypes the safetensors format defines but this reader does not handle:
 * a file using them is valid, so the answer is "unsupported", not "bad". */
static const char *const KNOWN_UNSUPPORTED[] = {
    "F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64", "C128",
};

const char *qp_st_dtype_name(qp_st_dtype dt)
{
    if ((unsigned)dt >= QP_ST_DTYPE_COUNT)
        return "?";
    return DTYPES[dt].name;
}

uint32_t qp_st_dtype_size(qp_st_dtype dt)
{
    if ((unsigned)dt >= QP_ST_DTYPE_COUNT)
        return 0;
    return DTYPES[dt].size;
}

int qp_st_dtype_is_float(qp_st_dtype dt)
{
    if ((unsigned)dt >= QP_ST_DTYPE_COUNT)
        return 0;
    return DTYPES[dt].is_float;
}

qp_status qp_st_dtype_from_name(const char *name, qp_st_dtype *out)
{
    if (!name)
        return QP_ERR_BAD_INPUT;
    for (int i = 0; i < QP_ST_DTYPE_COUNT; i++) {
        if (strcmp(name, DTYPES[i].name) == 0) {
            if (out)
                *out = (qp_st_dtype)i;
            return QP_OK;
        }
    }
    for (size_t i = 0; i < sizeof KNOWN_UNSUPPORTED / sizeof KNOWN_UNSUPPORTED[0]; i++)
        if (strcmp(name, KNOWN_UNSUPPORTED[i]) == 0)
            return QP_ERR_UNSUPPORTED;
    return QP_ERR_BAD_INPUT;
}

float qp_st_f8_e4m3_to_f32(uint8_t b)
{
    const uint32_t sign = (uint32_t)(b & 0x80) << 24;
    const uint32_t e = (b >> 3) & 0xf;
    const uint32_t m = b & 0x7;
    if (e == 0xf && m == 0x7)
        return qp_bits_f32(sign | 0x7fc00000u); /* the only NaN; no infinities */
    if (e == 0) {
        /* Subnormal: m/8 * 2^(1-7) = m * 2^-9, exact in f32. */
        float v = (float)m * 0x1.0p-9f;
        return sign ? -v : v;
    }
    /* Normal: rebias the exponent from 7 to 127, move the 3 mantissa bits
     * to the top of f32's 23. */
    return qp_bits_f32(sign | ((e - 7 + 127) << 23) | (m << 20));
}

float qp_st_f8_e5m2_to_f32(uint8_t b)
{
    /* E5M2 is the upper byte of an IEEE half: same sign, exponent width and
     * bias, with the mantissa cut to 2 bits. */
    return qp_f16_to_f32((uint16_t)((uint16_t)b << 8));
}

void qp_st_convert_f32(qp_st_dtype dt, const unsigned char *src, size_t n, float *dst)
{
    switch (dt) {
    case QP_ST_F32:
        memcpy(dst, src, n * 4);
        break;
    case QP_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + i * 8, 8);
            dst[i] = (float)d; /* IEEE rounding (Annex F); out of range -> inf */
        }
        break;
    case QP_ST_F16:
        for (size_t i = 0; i < n; i++)
            dst[i] = qp_f16_to_f32((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
        break;
    case QP_ST_BF16:
        for (size_t i = 0; i < n; i++)
            dst[i] = qp_bf16_to_f32((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
        break;
    case QP_ST_F8_E4M3:
        for (size_t i = 0; i < n; i++)
            dst[i] = qp_st_f8_e4m3_to_f32(src[i]);
        break;
    case QP_ST_F8_E5M2:
        for (size_t i = 0; i < n; i++)
            dst[i] = qp_st_f8_e5m2_to_f32(src[i]);
        break;
    default:
        /* Callers check qp_st_dtype_is_float first. */
        memset(dst, 0, n * sizeof *dst);
        break;
    }
}
