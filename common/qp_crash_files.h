/* qp_crash_files.h - what a process dying on a signal must know about files.
 *
 * GGUF inputs are used through a read-only mapping (format/gguf_reader.c).
 * Every size is validated at open, but if another process truncates the
 * file afterwards, touching the lost pages raises SIGBUS instead of an I/O
 * error. The mapped ranges are registered here with their file names so
 * that a SIGBUS handler (in cli/, the library never handles signals) can
 * say which file shrank, and temp outputs are registered so that the same
 * handler can remove them before the process exits: no stale NAME.tmp.
 *
 * Registration takes a mutex; the lookups used by the handler take no lock
 * and only read fixed-size slots, so they are async-signal-safe (a slot
 * being changed concurrently can at worst be missed). A full table is not an
 * error: the file just goes unnamed or unremoved in that rare crash. */
#ifndef QP_CRASH_FILES_H
#define QP_CRASH_FILES_H

#include <stddef.h>

/* Returns a handle (>= 0) for unregistering, or -1 when the table is full. */
int qp_crash_map_register(const void *addr, size_t len, const char *path);
void qp_crash_map_unregister(int handle); /* accepts -1 */

int qp_crash_tmp_register(const char *path);
void qp_crash_tmp_unregister(int handle); /* accepts -1 */

/* Async-signal-safe: the registered path whose mapping holds `addr`, or NULL. */
const char *qp_crash_map_find(const void *addr);
/* Async-signal-safe: unlink every registered temp file. */
void qp_crash_tmp_unlink_all(void);

#endif
