// libFuzzer's entry for programs with a main of their own (SwiftPM links every executable's main
// through its own symbol, so libFuzzer's main is never used). Defined by the -sanitize=fuzzer runtime.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
