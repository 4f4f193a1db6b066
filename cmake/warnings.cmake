# Flags for the project's own targets (tests, examples, benchmarks); never imposed on consumers.
add_library(switchboard_warnings INTERFACE)
target_compile_options(switchboard_warnings INTERFACE -Wall -Wextra -Wpedantic
  $<$<BOOL:${SWITCHBOARD_WARNINGS_AS_ERRORS}>:-Werror>
  # GCC 12's -Warray-bounds reports false positives inside Asio's any_executor when inlined at -O2/-O3
  # (GCC bug 105651 and relatives); the flag stays on for clang.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-array-bounds>)
# Our own code must not lean on Asio's deprecated names, so that it builds with newer Asio too.
target_compile_definitions(switchboard_warnings INTERFACE ASIO_NO_DEPRECATED)
