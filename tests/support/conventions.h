/* conventions.h - parse tests/fixtures/gguf-conventions/<model>.md (what
 * llama.cpp's converter wrote) and compare a GGUF against it. */
#ifndef QP_TEST_CONVENTIONS_H
#define QP_TEST_CONVENTIONS_H

#include "format/gguf.h"

/* Returns the number of differences (0 = the file matches), printing each
 * through cmocka's print_error. Keys whose value is "(...)" (verbatim
 * strings) are checked for presence and type only. */
int qp_conventions_compare(const char *md_path, const qp_gguf *g);

#endif
