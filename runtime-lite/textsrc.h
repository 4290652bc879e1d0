/* textsrc.h - evaluation text from a file: plain text or JSON Lines (one
 * object per line, the string field `field` of each taken as a document),
 * optionally compressed with gzip/zlib (.gz) or zstd (.zst); the format of
 * compression is recognised by its magic bytes, not the name. JSON Lines
 * documents are joined with a blank line ("\n\n") between them. */
#ifndef QP_RT_TEXTSRC_H
#define QP_RT_TEXTSRC_H

#include <stddef.h>

#include "common/qp_error.h"

/* Upper bound on the decompressed size (a bomb guard): 4 GiB. */
#define QP_TEXT_MAX_BYTES ((size_t)4 << 30)

/* Read `path` whole. field == NULL: the bytes are the text. Otherwise every
 * non-blank line must be a JSON object whose `field` is a string.
 * *text is malloc'ed and NUL-terminated (not counted in *len). */
qp_status qp_text_load(const char *path, const char *field, char **text, size_t *len, qp_err *err);

/* The same from bytes already in memory (tests, fuzzing); `data` is
 * decompressed when it starts with a gzip/zlib or zstd magic. */
qp_status qp_text_from_memory(const void *data, size_t size, const char *field, const char *name_for_errors,
                              char **text, size_t *len, qp_err *err);

#endif
