/* verify_json.h - the machine-readable result of `qpack verify` (schema
 * "qpack.verify/1", documented in docs/report.md). */
#ifndef QP_VERIFY_JSON_H
#define QP_VERIFY_JSON_H

#include "verify/against.h"
#include "verify/fileset.h"

typedef struct {
    const char *file;               /* as given by the user */
    const qp_fileset *set;          /* NULL when the file could not be opened */
    int checksum_files;             /* files whose qpack.tensor_xxh3 matched */
    const char *error;              /* structural/checksum failure, or NULL */
    const char *against;            /* source path, or NULL */
    const char *imatrix;            /* importance matrix path, or NULL */
    const qp_verify_result *result; /* NULL without --against */
} qp_verify_json_in;

/* The JSON text (pretty-printed, malloc'ed; free()), NULL on allocation
 * failure. Infinite or NaN figures are written as null. */
char *qp_verify_json(const qp_verify_json_in *in);

#endif
