// switchboard/core/detail/thread_scratch.hpp
//
// One read buffer per thread, for connections that wait for their socket to become readable and then read and
// parse at once (WebSocket sessions and RESP clients over plain TCP): so an idle connection holds no read buffer of
// its own, and ten thousand idle ones do not hold ten thousand buffers. Whoever reads into it must use the bytes
// within the same handler and copy out what it leaves unparsed before returning: the next connection served by
// the thread reads into the same bytes.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace switchboard::detail {

inline constexpr std::size_t thread_scratch_size = 64 * 1024;

/// This thread's scratch buffer (`thread_scratch_size` bytes, content unspecified).
inline std::span<char> thread_scratch() {
  static thread_local const std::unique_ptr<char[]> buffer = std::make_unique_for_overwrite<char[]>(thread_scratch_size);
  return {buffer.get(), thread_scratch_size};
}

}  // namespace switchboard::detail
