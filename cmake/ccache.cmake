# Compiler cache for the project's own builds (tests, examples, benchmarks): a CI run or a second build tree
# recompiles only what changed. Used when ccache is installed and the user did not choose a launcher.
# The precompiled headers of the tests are cached too; ccache needs to be told that reusing them is safe
# (sloppiness pch_defines,time_macros), and, for clang, that the PCH carries no timestamp.
find_program(SWITCHBOARD_CCACHE_PROGRAM ccache)
if(SWITCHBOARD_CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER
      ${CMAKE_COMMAND} -E env "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}" ${SWITCHBOARD_CCACHE_PROGRAM})
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    add_compile_options("SHELL:-Xclang -fno-pch-timestamp")
  endif()
endif()
