// The ws error category and the close code each error maps to (RFC 6455 §7.4.1), and which close codes may
// appear on the wire (§7.4).
#include <switchboard/ws/error.hpp>

#include "support/catch.hpp"

#include <set>
#include <string>

using namespace switchboard::ws;

TEST_CASE("error: category, messages and close codes", "[ws][error]") {
  std::set<std::string> messages;
  for (int v = static_cast<int>(error::reserved_bits_set); v <= static_cast<int>(error::unexpected_extension); ++v) {
    const std::error_code ec = static_cast<error>(v);
    CHECK(ec.category() == ws_category());
    CHECK(ec.message() != "unknown switchboard.ws error");
    messages.insert(ec.message());
  }
  // Every value has its own message.
  CHECK(messages.size() == static_cast<std::size_t>(error::unexpected_extension));
  CHECK(std::string(ws_category().name()) == "switchboard.ws");

  CHECK(close_code_for(error::unknown_opcode) == close_code::protocol_error);
  CHECK(close_code_for(error::unmasked_client_frame) == close_code::protocol_error);
  CHECK(close_code_for(error::close_payload_too_short) == close_code::protocol_error);
  CHECK(close_code_for(error::invalid_close_code) == close_code::protocol_error);
  CHECK(close_code_for(error::invalid_key) == close_code::protocol_error);
  CHECK(close_code_for(error::invalid_utf8) == close_code::invalid_payload);
  CHECK(close_code_for(error::invalid_close_reason) == close_code::invalid_payload);
  CHECK(close_code_for(error::invalid_compressed_data) == close_code::invalid_payload);
  CHECK(close_code_for(error::frame_too_big) == close_code::message_too_big);
  CHECK(close_code_for(error::message_too_big) == close_code::message_too_big);
  CHECK(close_code_for(error::compression_failure) == close_code::internal_error);
  CHECK(close_code_for(std::error_code(error::invalid_utf8)) == close_code::invalid_payload);
  CHECK(close_code_for(std::make_error_code(std::errc::connection_reset)) == close_code::internal_error);
}

TEST_CASE("error: close codes valid on the wire", "[ws][error]") {
  std::set<int> valid;
  for (int code = 0; code <= 0xFFFF; ++code) {
    if (is_valid_close_code(static_cast<std::uint16_t>(code))) valid.insert(code);
  }
  std::set<int> expected = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014};
  for (int code = 3000; code <= 4999; ++code) expected.insert(code);
  CHECK(valid == expected);
}
