/* fuzz_main.c - libFuzzer entry point; compiled once per target with
 * QP_FUZZ_FN naming the target body in tests/support/fuzz_*.c. */
#include "support/fuzz_targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    (void)QP_FUZZ_FN(data, size);
    return 0;
}
