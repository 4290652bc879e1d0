/* spill.h - the hidden states of every chunk between two layers, in memory
 * or spilled to a zstd-compressed temporary file.
 *
 * A store holds n_chunks records of chunk_bytes each (a chunk's hidden
 * states). In memory it is one array. Spilled, each record is one zstd
 * frame appended to a temporary file that is unlinked as soon as it is
 * created (so nothing is left behind on error, crash or interrupt) and read
 * back with pread; compression is lossless, so a spilled run gives the same
 * bits as one in memory. Records may be written in any order, each once
 * between resets, and read any number of times. */
#ifndef QP_RT_SPILL_H
#define QP_RT_SPILL_H

#include <stddef.h>
#include <stdint.h>

#include "common/qp_error.h"

typedef struct qp_rt_spill qp_rt_spill;

/* to_disk: spill to a temporary file in tmpdir (NULL: $TMPDIR, else /tmp)
 * at zstd level `level` (clamped to 1..19); else keep in memory. */
qp_status qp_rt_spill_new(int64_t n_chunks, size_t chunk_bytes, int to_disk, const char *tmpdir, int level,
                          qp_rt_spill **out, qp_err *err);
void qp_rt_spill_free(qp_rt_spill *s); /* accepts NULL; closes (and so removes) the file */

qp_status qp_rt_spill_put(qp_rt_spill *s, int64_t chunk, const void *rec, qp_err *err);
qp_status qp_rt_spill_get(qp_rt_spill *s, int64_t chunk, void *rec, qp_err *err);
/* Forget every record (truncates the file) to reuse the store. */
qp_status qp_rt_spill_reset(qp_rt_spill *s, qp_err *err);

int qp_rt_spill_on_disk(const qp_rt_spill *s);
uint64_t qp_rt_spill_ram_bytes(const qp_rt_spill *s);  /* records + buffers held in memory */
uint64_t qp_rt_spill_disk_bytes(const qp_rt_spill *s); /* compressed bytes in the file now */

#endif
