# Flags for the project's own targets (tests, examples, benchmarks); never imposed on consumers.
add_library(switchboard_warnings INTERFACE)
target_compile_options(switchboard_warnings INTERFACE -Wall -Wextra -Wpedantic
  $<$<BOOL:${SWITCHBOARD_WARNINGS_AS_ERRORS}>:-Werror>
  # GCC 12 reports false positives at -O2/-O3 from -Warray-bounds (inside Asio's any_executor) and from
  # -Wstringop-overflow / -Wrestrict (inside std::string concatenation; GCC bugs 105329, 105651). The same
  # code is checked by clang, where these stay on.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-array-bounds -Wno-stringop-overflow -Wno-restrict>
  # GCC 12 warns about members omitted from designated initializers (GCC bug 96868, fixed in 13); configuration
  # structs are meant to be used exactly that way.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-missing-field-initializers>
  # GCC's -Wmaybe-uninitialized misfires inside <regex> (used by Catch2) and std::optional at some levels.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
# Our own code must not lean on Asio's deprecated names, so that it builds with newer Asio too.
target_compile_definitions(switchboard_warnings INTERFACE ASIO_NO_DEPRECATED)
