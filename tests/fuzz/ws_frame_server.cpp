// libFuzzer target: the WebSocket frame parser in the server role (masked client frames), fed whole and in
// chunks; the two runs must agree. See ws_frame_fuzz.hpp for the input layout.
#include "ws_frame_fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return switchboard::ws::fuzz::fuzz_frames(switchboard::ws::role::server, data, size);
}
