# FindAsio: locates standalone Asio (header-only) and provides the imported target asio::asio.
#
# Order of preference:
#   1. an `asio` CMake package where one exists (vcpkg's `asio`, Conan's generated config),
#   2. the plain headers, as Debian's libasio-dev installs them (/usr/include/asio.hpp).
#
# Result variables: Asio_FOUND, Asio_VERSION, Asio_INCLUDE_DIR.
include(FindPackageHandleStandardArgs)

if(NOT TARGET asio::asio)
  # vcpkg and Conan name the package `asio`; try it quietly and without recursing into this module.
  find_package(asio CONFIG QUIET)
  if(TARGET asio::asio)
    get_target_property(Asio_INCLUDE_DIR asio::asio INTERFACE_INCLUDE_DIRECTORIES)
  elseif(TARGET asio)
    add_library(asio::asio ALIAS asio)
    get_target_property(Asio_INCLUDE_DIR asio INTERFACE_INCLUDE_DIRECTORIES)
  endif()
endif()

if(NOT Asio_INCLUDE_DIR OR Asio_INCLUDE_DIR MATCHES "NOTFOUND")
  find_path(Asio_INCLUDE_DIR NAMES asio.hpp PATH_SUFFIXES asio/include)
endif()

# Take the first include directory that holds asio/version.hpp to read the version.
foreach(dir IN LISTS Asio_INCLUDE_DIR)
  if(EXISTS "${dir}/asio/version.hpp")
    file(STRINGS "${dir}/asio/version.hpp" version_line REGEX "^#define ASIO_VERSION [0-9]+")
    string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" version_number "${version_line}")
    math(EXPR major "${version_number} / 100000")
    math(EXPR minor "${version_number} / 100 % 1000")
    math(EXPR patch "${version_number} % 100")
    set(Asio_VERSION "${major}.${minor}.${patch}")
    break()
  endif()
endforeach()

find_package_handle_standard_args(Asio REQUIRED_VARS Asio_INCLUDE_DIR VERSION_VAR Asio_VERSION)

if(Asio_FOUND AND NOT TARGET asio::asio)
  find_package(Threads REQUIRED)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${Asio_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
  # Asio before 1.24 detects C++20 coroutines in clang only through <experimental/coroutine> (libc++), so with
  # libstdc++ (Debian's default) clang gets no asio::awaitable. clang 14 and later support <coroutine>: say so.
  if(Asio_VERSION VERSION_LESS 1.24)
    set_property(TARGET asio::asio APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS
      "$<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_CO_AWAIT=1>" "$<$<CXX_COMPILER_ID:Clang>:ASIO_HAS_STD_COROUTINE=1>")
  endif()
endif()
mark_as_advanced(Asio_INCLUDE_DIR)
