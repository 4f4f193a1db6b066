// The frame parser against tables organised like the Autobahn TestSuite case groups (1 framing, 2 ping/pong,
// 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close handling, 9 limits), plus the length encoding
// and masking rules of RFC 6455 §5.1-§5.2. Every input is fed whole, split at every position and byte by byte.
// Compression (Autobahn 12/13) is in deflate.cpp.
#include <switchboard/ws/frame_parser.hpp>

#include "support/catch.hpp"
#include "ws/ws_test_support.hpp"

#include <string>
#include <vector>

using namespace switchboard::ws;
using namespace switchboard::ws::test;

namespace {

const parser_options defaults{};

void server_case(std::string_view input, const transcript& expected, const parser_options& o = defaults) {
  check_all_splits(role::server, o, input, expected);
}

void client_case(std::string_view input, const transcript& expected, const parser_options& o = defaults) {
  check_all_splits(role::client, o, input, expected);
}

std::string text_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

std::string binary_of(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + 3) & 0xFF);
  return s;
}

}  // namespace

TEST_CASE("frame_parser: RFC 6455 §5.7 examples", "[ws][frame_parser]") {
  SECTION("a single-frame unmasked text message, received by a client") {
    client_case(hex("81 05 48 65 6c 6c 6f"), ok({"text:Hello"}));
  }
  SECTION("a single-frame masked text message, received by a server") {
    server_case(hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"), ok({"text:Hello"}));
  }
  SECTION("a fragmented unmasked text message") {
    client_case(hex("01 03 48 65 6c 80 02 6c 6f"), ok({"text:Hello"}));
  }
  SECTION("an unmasked ping and a masked pong") {
    client_case(hex("89 05 48 65 6c 6c 6f"), ok({"ping:Hello"}));
    server_case(hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"), ok({"pong:Hello"}));
  }
  SECTION("256 bytes and 64 KiB binary messages in single unmasked frames") {
    const std::string small = binary_of(256), big = binary_of(65536);
    client_case(hex("82 7E 01 00") + small, ok({"binary:" + small}));
    client_case(hex("82 7F 00 00 00 00 00 01 00 00") + big, ok({"binary:" + big}));
  }
}

TEST_CASE("frame_parser: 1 framing, text and binary of every length form", "[ws][frame_parser]") {
  for (std::size_t n : {0, 1, 125, 126, 127, 128, 65535, 65536}) {
    DYNAMIC_SECTION("length " << n) {
      const std::string t = text_of(n), b = binary_of(n);
      server_case(client_frame(0x1, t), ok({"text:" + t}));
      server_case(client_frame(0x2, b), ok({"binary:" + b}));
      client_case(server_frame(0x2, b), ok({"binary:" + b}));
    }
  }
  SECTION("several messages back to back") {
    server_case(client_frame(0x1, "one") + client_frame(0x2, "two") + client_frame(0x1, ""),
                ok({"text:one", "binary:two", "text:"}));
  }
}

TEST_CASE("frame_parser: length encodings (RFC 6455 §5.2)", "[ws][frame_parser]") {
  SECTION("a 16-bit length below 126 is not minimal") {
    client_case(hex("82 7E 00 7D") + binary_of(125), failed(error::non_minimal_length));
    client_case(hex("82 7E 00 00"), failed(error::non_minimal_length));
  }
  SECTION("a 64-bit length below 65536 is not minimal") {
    client_case(hex("82 7F 00 00 00 00 00 00 FF FF") + binary_of(65535), failed(error::non_minimal_length));
    client_case(hex("82 7F 00 00 00 00 00 00 00 05") + "hello", failed(error::non_minimal_length));
  }
  SECTION("a 64-bit length with the most significant bit set") {
    client_case(hex("82 7F 80 00 00 00 00 00 00 00"), failed(error::length_high_bit_set));
    client_case(hex("82 7F FF FF FF FF FF FF FF FF"), failed(error::length_high_bit_set));
  }
  SECTION("the smallest lengths of each form are accepted") {
    client_case(hex("82 7E 00 7E") + binary_of(126), ok({"binary:" + binary_of(126)}));
    client_case(hex("82 7F 00 00 00 00 00 01 00 00") + binary_of(65536), ok({"binary:" + binary_of(65536)}));
  }
}

TEST_CASE("frame_parser: masking follows the role (RFC 6455 §5.1)", "[ws][frame_parser]") {
  SECTION("a server rejects an unmasked client frame") {
    server_case(server_frame(0x1, "hi"), failed(error::unmasked_client_frame));
    server_case(server_frame(0x9, ""), failed(error::unmasked_client_frame));
  }
  SECTION("a client rejects a masked server frame") {
    client_case(client_frame(0x1, "hi"), failed(error::masked_server_frame));
  }
  SECTION("masking keys of every kind unmask correctly") {
    for (mask_key key : {mask_key{0, 0, 0, 0}, mask_key{0xff, 0xff, 0xff, 0xff}, mask_key{1, 2, 3, 4}}) {
      const std::string payload = binary_of(300);
      server_case(raw_frame({.opcode = 0x2, .key = key}, payload), ok({"binary:" + payload}));
    }
  }
}

TEST_CASE("frame_parser: 2 ping and pong", "[ws][frame_parser]") {
  SECTION("2.1 ping without payload") { server_case(client_frame(0x9, ""), ok({"ping:"})); }
  SECTION("2.2 ping with text payload") { server_case(client_frame(0x9, "Hello, world!"), ok({"ping:Hello, world!"})); }
  SECTION("2.3 ping with binary payload") {
    server_case(client_frame(0x9, hex("00 ff fe fd fc fb 00 ff")), ok({"ping:" + hex("00 ff fe fd fc fb 00 ff")}));
  }
  SECTION("2.4 ping with 125 bytes") { server_case(client_frame(0x9, binary_of(125)), ok({"ping:" + binary_of(125)})); }
  SECTION("2.5 ping with 126 bytes fails") {
    server_case(client_frame(0x9, binary_of(126)), failed(error::control_frame_too_big));
  }
  SECTION("2.6 ping, then a message") {
    server_case(client_frame(0x9, "p") + client_frame(0x1, "m"), ok({"ping:p", "text:m"}));
  }
  SECTION("2.7 unsolicited pong without payload") { server_case(client_frame(0xA, ""), ok({"pong:"})); }
  SECTION("2.8 unsolicited pong with payload") { server_case(client_frame(0xA, "unsolicited"), ok({"pong:unsolicited"})); }
  SECTION("2.10 ten pings in a row") {
    std::string input;
    std::vector<std::string> expected;
    for (int i = 0; i < 10; ++i) {
      input += client_frame(0x9, "payload-" + std::to_string(i));
      expected.push_back("ping:payload-" + std::to_string(i));
    }
    server_case(input, ok(expected));
  }
  SECTION("pong with 126 bytes fails") {
    client_case(server_frame(0xA, binary_of(126)), failed(error::control_frame_too_big));
  }
  SECTION("control frames with 16- or 64-bit length forms fail even when small") {
    client_case(hex("89 7E 00 05") + "hello", failed(error::control_frame_too_big));
    client_case(hex("8A 7F 00 00 00 00 00 00 00 05") + "hello", failed(error::control_frame_too_big));
  }
}

TEST_CASE("frame_parser: 3 reserved bits", "[ws][frame_parser]") {
  SECTION("3.1 RSV1 on a text frame without an extension") {
    server_case(raw_frame({.rsv1 = true, .opcode = 0x1}, "Hello"), failed(error::reserved_bits_set));
  }
  SECTION("3.2 RSV2 after a valid message") {
    server_case(client_frame(0x1, "Hello") + raw_frame({.rsv2 = true, .opcode = 0x1}, "Hello"),
                failed(error::reserved_bits_set, {"text:Hello"}));
  }
  SECTION("3.3 RSV1+RSV2 after a valid message") {
    server_case(client_frame(0x1, "Hello") + raw_frame({.rsv1 = true, .rsv2 = true, .opcode = 0x1}, "Hello"),
                failed(error::reserved_bits_set, {"text:Hello"}));
  }
  SECTION("3.4 RSV3 on a text frame") {
    server_case(raw_frame({.rsv3 = true, .opcode = 0x1}, "Hello"), failed(error::reserved_bits_set));
  }
  SECTION("3.5 RSV1+RSV3 on a binary frame") {
    server_case(raw_frame({.rsv1 = true, .rsv3 = true, .opcode = 0x2}, binary_of(8)), failed(error::reserved_bits_set));
  }
  SECTION("3.6 RSV2+RSV3 on a ping") {
    server_case(raw_frame({.rsv2 = true, .rsv3 = true, .opcode = 0x9}, "Hello"), failed(error::reserved_bits_set));
  }
  SECTION("3.7 all three on a close") {
    server_case(raw_frame({.rsv1 = true, .rsv2 = true, .rsv3 = true, .opcode = 0x8}, ""),
                failed(error::reserved_bits_set));
  }
  SECTION("RSV2 and RSV3 stay reserved when permessage-deflate is agreed") {
    const parser_options o{.deflate = deflate_params{}};
    server_case(raw_frame({.rsv2 = true, .opcode = 0x1}, "x"), failed(error::reserved_bits_set), o);
    server_case(raw_frame({.rsv3 = true, .opcode = 0x2}, "x"), failed(error::reserved_bits_set), o);
  }
}

TEST_CASE("frame_parser: 4 opcodes", "[ws][frame_parser]") {
  for (std::uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7}) {
    DYNAMIC_SECTION("4.1 reserved non-control opcode " << int(op)) {
      server_case(client_frame(op, ""), failed(error::unknown_opcode));
      server_case(client_frame(0x1, "Hello") + client_frame(op, "payload") + client_frame(0x9, ""),
                  failed(error::unknown_opcode, {"text:Hello"}));
    }
  }
  for (std::uint8_t op : {0xB, 0xC, 0xD, 0xE, 0xF}) {
    DYNAMIC_SECTION("4.2 reserved control opcode " << int(op)) {
      server_case(client_frame(op, ""), failed(error::unknown_opcode));
      server_case(client_frame(0x1, "Hello") + client_frame(op, "payload") + client_frame(0x9, ""),
                  failed(error::unknown_opcode, {"text:Hello"}));
    }
  }
}

TEST_CASE("frame_parser: 5 fragmentation", "[ws][frame_parser]") {
  SECTION("5.1 a fragmented ping fails") {
    server_case(client_frame(0x9, "frag", false) + client_frame(0x0, "ment"), failed(error::fragmented_control_frame));
  }
  SECTION("5.2 a fragmented pong fails") {
    server_case(client_frame(0xA, "frag", false) + client_frame(0x0, "ment"), failed(error::fragmented_control_frame));
  }
  SECTION("a fragmented close fails") {
    server_case(client_frame(0x8, "", false), failed(error::fragmented_control_frame));
  }
  SECTION("5.3 a text message in two fragments") {
    server_case(client_frame(0x1, "frag", false) + client_frame(0x0, "ment"), ok({"text:fragment"}));
  }
  SECTION("5.6 a ping between two fragments") {
    server_case(client_frame(0x1, "frag", false) + client_frame(0x9, "ping") + client_frame(0x0, "ment"),
                ok({"ping:ping", "text:fragment"}));
  }
  SECTION("5.9 a final continuation without a message fails") {
    server_case(client_frame(0x0, "fragment") + client_frame(0x1, "fragment"), failed(error::unexpected_continuation));
  }
  SECTION("5.10 a non-final continuation without a message fails") {
    server_case(client_frame(0x0, "fragment", false), failed(error::unexpected_continuation));
  }
  SECTION("5.12 a continuation after a complete message fails") {
    server_case(client_frame(0x1, "whole") + client_frame(0x0, "more"),
                failed(error::unexpected_continuation, {"text:whole"}));
  }
  SECTION("5.15 a new text frame inside a fragmented message fails") {
    server_case(client_frame(0x1, "fragment1", false) + client_frame(0x0, "fragment2", false) +
                    client_frame(0x1, "fragment3", false) + client_frame(0x0, "fragment4"),
                failed(error::expected_continuation));
  }
  SECTION("a new binary frame inside a fragmented text message fails") {
    server_case(client_frame(0x1, "a", false) + client_frame(0x2, "b"), failed(error::expected_continuation));
  }
  SECTION("5.19 pings between many fragments") {
    server_case(client_frame(0x1, "fragment1", false) + client_frame(0x0, "fragment2", false) +
                    client_frame(0x9, "pongme 1!") + client_frame(0x0, "fragment3", false) +
                    client_frame(0x9, "pongme 2!") + client_frame(0x0, "fragment4", false) +
                    client_frame(0x0, "fragment5"),
                ok({"ping:pongme 1!", "ping:pongme 2!", "text:fragment1fragment2fragment3fragment4fragment5"}));
  }
  SECTION("empty fragments at the start, middle and end") {
    server_case(client_frame(0x2, "", false) + client_frame(0x0, "ab", false) + client_frame(0x0, "", false) +
                    client_frame(0x0, "cd", false) + client_frame(0x0, ""),
                ok({"binary:abcd"}));
    server_case(client_frame(0x1, "", false) + client_frame(0x0, ""), ok({"text:"}));
  }
  SECTION("a binary message in one-byte fragments") {
    const std::string b = binary_of(64);
    std::string input = client_frame(0x2, b.substr(0, 1), false);
    for (std::size_t i = 1; i + 1 < b.size(); ++i) input += client_frame(0x0, b.substr(i, 1), false);
    input += client_frame(0x0, b.substr(b.size() - 1));
    server_case(input, ok({"binary:" + b}));
  }
  SECTION("a close between fragments ends the exchange") {
    server_case(client_frame(0x1, "frag", false) + client_frame(0x8, close_payload(1000)),
                ok({"close:1000:"}));
  }
}

TEST_CASE("frame_parser: 6 UTF-8 in text messages", "[ws][frame_parser]") {
  // Valid and invalid sequences from Markus Kuhn's UTF-8 decoder test, as Autobahn 6.x sends them.
  const std::vector<std::string> valid = {
      "hello\x24world", "hello\xC2\xA2world", "hello\xE2\x82\xACworld", "hello\xF0\xA4\xAD\xA2world",
      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",  // "κόσμε"
      std::string("\x00", 1), "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80",  // first of each length
      "\x7f", "\xdf\xbf", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",                   // last of each length
      "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd",                           // around the surrogates
      "\xef\xbf\xbe", "\xf0\x9f\xbf\xbf", "\xf4\x8f\xbf\xbe",                   // non-characters are valid
  };
  const std::vector<std::string> invalid = {
      "\xf4\x90\x80\x80",                      // above U+10FFFF
      "\x80", "\xbf", "\x80\xbf\x80",          // unexpected continuation bytes
      "\xc0 ", "\xe0 ", "\xf0 ", "\xf8 ",      // lonely start bytes
      "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf",  // overlong '/'
      "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf",  // maximum overlongs
      "\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80",  // surrogates, single and paired
      "\xfe", "\xff", "\xf8\x88\x80\x80\x80",  // impossible bytes, 5-byte forms
      "\xce\xba\xe1\xbd",                      // ends inside a code point
  };
  SECTION("6.x valid text in one frame and in one-byte fragments") {
    for (const auto& s : valid) {
      INFO("payload " << s);
      server_case(client_frame(0x1, s), ok({"text:" + s}));
      std::string fragments;
      for (std::size_t i = 0; i < s.size(); ++i) {
        fragments += client_frame(i == 0 ? 0x1 : 0x0, s.substr(i, 1), i + 1 == s.size());
      }
      server_case(fragments, ok({"text:" + s}));
    }
  }
  SECTION("6.x invalid text fails with 1007, however it is fragmented") {
    for (const auto& s : invalid) {
      INFO("payload " << s);
      server_case(client_frame(0x1, s), failed(error::invalid_utf8));
      std::string fragments;
      for (std::size_t i = 0; i < s.size(); ++i) {
        fragments += client_frame(i == 0 ? 0x1 : 0x0, s.substr(i, 1), i + 1 == s.size());
      }
      server_case(fragments, failed(error::invalid_utf8));
    }
  }
  SECTION("6.4 fail fast: the error comes with the first bad fragment, before the message ends") {
    // "κόσμε" then U+110000's first bytes: the second fragment is already invalid; the rest never arrives.
    const std::string first = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    server_case(client_frame(0x1, first, false) + client_frame(0x0, "\xf4\x90", false),
                failed(error::invalid_utf8));
    // Within a single frame of 1000 bytes, as soon as the bad byte is in: only 4 payload bytes are sent.
    const std::string frame = client_frame(0x1, "\xce\xba\xed\xa0" + std::string(996, 'x'));
    server_case(frame.substr(0, 8 + 4), failed(error::invalid_utf8));
  }
  SECTION("binary messages are not checked") {
    server_case(client_frame(0x2, "\xff\xfe\xc0"), ok({"binary:\xff\xfe\xc0"}));
  }
}

TEST_CASE("frame_parser: 7 close handling", "[ws][frame_parser]") {
  SECTION("7.3.1 an empty close reports 1005") { server_case(client_frame(0x8, ""), ok({"close:1005:"})); }
  SECTION("7.3.2 a 1-byte close payload fails") {
    server_case(client_frame(0x8, "\x03"), failed(error::close_payload_too_short));
  }
  SECTION("7.3.3 a close with a code") { server_case(client_frame(0x8, close_payload(1000)), ok({"close:1000:"})); }
  SECTION("7.3.4 a close with a code and a reason") {
    server_case(client_frame(0x8, close_payload(1000, "Hello World!")), ok({"close:1000:Hello World!"}));
  }
  SECTION("7.3.5 a close with a 123-byte reason") {
    const std::string reason(123, 'r');
    server_case(client_frame(0x8, close_payload(1000, reason)), ok({"close:1000:" + reason}));
  }
  SECTION("7.3.6 a close with a 124-byte reason is too big for a control frame") {
    server_case(client_frame(0x8, close_payload(1000, std::string(124, 'r'))), failed(error::control_frame_too_big));
  }
  SECTION("7.5.1 a close reason that is not UTF-8 fails with 1007") {
    server_case(client_frame(0x8, close_payload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")),
                failed(error::invalid_close_reason));
  }
  SECTION("7.7 valid close codes") {
    for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}) {
      INFO("code " << code);
      server_case(client_frame(0x8, close_payload(static_cast<std::uint16_t>(code))),
                  ok({"close:" + std::to_string(code) + ":"}));
    }
  }
  SECTION("7.9 invalid close codes") {
    for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
      INFO("code " << code);
      server_case(client_frame(0x8, close_payload(static_cast<std::uint16_t>(code))), failed(error::invalid_close_code));
    }
  }
  SECTION("7.1 nothing may follow a close") {
    server_case(client_frame(0x8, close_payload(1000)) + client_frame(0x1, "late"),
                failed(error::frame_after_close, {"close:1000:"}));
    server_case(client_frame(0x8, "") + client_frame(0x9, ""), failed(error::frame_after_close, {"close:1005:"}));
  }
  SECTION("a client receives the server's close") {
    client_case(server_frame(0x8, close_payload(1001, "bye")), ok({"close:1001:bye"}));
  }
}

TEST_CASE("frame_parser: 9 limits", "[ws][frame_parser]") {
  SECTION("a message of exactly the limit passes; one byte more fails with 1009") {
    const parser_options o{.max_message_size = 1000};
    server_case(client_frame(0x2, binary_of(1000)), ok({"binary:" + binary_of(1000)}), o);
    server_case(client_frame(0x2, binary_of(1001)), failed(error::message_too_big), o);
  }
  SECTION("the message limit counts every fragment") {
    const parser_options o{.max_message_size = 10};
    server_case(client_frame(0x1, "12345", false) + client_frame(0x0, "67890"), ok({"text:1234567890"}), o);
    server_case(client_frame(0x1, "12345", false) + client_frame(0x0, "67890", false) + client_frame(0x0, "x"),
                failed(error::message_too_big), o);
    // Each message starts from zero.
    server_case(client_frame(0x1, "1234567890") + client_frame(0x1, "1234567890"),
                ok({"text:1234567890", "text:1234567890"}), o);
  }
  SECTION("the frame limit applies to each data frame") {
    const parser_options o{.max_frame_size = 4};
    server_case(client_frame(0x1, "1234", false) + client_frame(0x0, "5678"), ok({"text:12345678"}), o);
    server_case(client_frame(0x1, "12345"), failed(error::frame_too_big), o);
  }
  SECTION("limits are checked on the header, before the payload arrives") {
    const parser_options o{.max_message_size = 1 << 20};
    // A header announcing 2^62 bytes fails at once; no payload follows.
    server_case(hex("82 FF 40 00 00 00 00 00 00 00 37 fa 21 3d"), failed(error::message_too_big), o);
  }
  SECTION("control frames are bounded by 125 bytes, not by the limits") {
    const parser_options o{.max_message_size = 4, .max_frame_size = 4};
    server_case(client_frame(0x9, binary_of(125)), ok({"ping:" + binary_of(125)}), o);
  }
  SECTION("the default message limit is 16 MiB") {
    CHECK(parser_options{}.max_message_size == 16u * 1024 * 1024);
    const std::string header_over = hex("82 FF 00 00 00 00 01 00 00 01 37 fa 21 3d");  // 16 MiB + 1
    server_case(header_over, failed(error::message_too_big));
  }
}

TEST_CASE("frame_parser: buffer ownership", "[ws][frame_parser]") {
  SECTION("uncompressed payloads are unmasked in place and handed out as views into the caller's buffer") {
    std::string buffer = client_frame(0x1, "Hello") + client_frame(0x2, "World");
    const std::string second = buffer.substr(11);
    frame_parser p(role::server);
    const auto r = p.parse(std::span<char>(buffer.data(), buffer.size()));
    REQUIRE(r.event == parse_event::data);
    CHECK(r.consumed == 11);
    CHECK(r.payload == "Hello");
    CHECK(r.payload.data() == buffer.data() + 6);
    CHECK(buffer.substr(6, 5) == "Hello");  // unmasked in place
    CHECK(buffer.substr(11) == second);     // bytes not consumed are untouched
  }
  SECTION("a control payload that arrives whole is unmasked in place") {
    std::string frame = client_frame(0x9, "ping!");
    frame_parser p(role::server);
    auto first = p.parse(std::span<char>(frame.data(), 4));  // part of the header only
    CHECK(first.event == parse_event::need_more);
    auto rest = p.parse(std::span<char>(frame.data() + 4, frame.size() - 4));
    REQUIRE(rest.event == parse_event::ping);
    CHECK(rest.payload == "ping!");
    CHECK(rest.payload.data() == frame.data() + 6);
  }
  SECTION("a control payload split across inputs is collected in the parser and handed out whole") {
    std::string frame = client_frame(0xA, "pong!");
    frame_parser p(role::server);
    auto first = p.parse(std::span<char>(frame.data(), 8));  // the header and two payload bytes
    CHECK(first.event == parse_event::need_more);
    CHECK(first.consumed == 8);
    auto rest = p.parse(std::span<char>(frame.data() + 8, frame.size() - 8));
    REQUIRE(rest.event == parse_event::pong);
    CHECK(rest.consumed == 3);
    CHECK(rest.payload == "pong!");
    CHECK((rest.payload.data() < frame.data() || rest.payload.data() >= frame.data() + frame.size()));
  }
  SECTION("after an error every call repeats it and consumes nothing") {
    std::string bad = client_frame(0x3, "");
    frame_parser p(role::server);
    CHECK(p.parse(std::span<char>(bad.data(), bad.size())).error == error::unknown_opcode);
    const auto again = p.parse(std::span<char>(bad.data(), bad.size()));
    CHECK(again.event == parse_event::error);
    CHECK(again.error == error::unknown_opcode);
    CHECK(again.consumed == 0);
    CHECK(p.done());
  }
  SECTION("in_message tracks a fragmented message") {
    std::string input = client_frame(0x1, "a", false) + client_frame(0x0, "b");
    frame_parser p(role::server);
    std::span<char> all(input.data(), input.size());
    auto r1 = p.parse(all);
    CHECK(r1.event == parse_event::data);
    CHECK_FALSE(r1.message_end);
    CHECK(p.in_message());
    auto r2 = p.parse(all.subspan(r1.consumed));
    CHECK(r2.message_end);
    CHECK_FALSE(p.in_message());
  }
}

TEST_CASE("frame_parser: configuration errors throw", "[ws][frame_parser]") {
  CHECK_THROWS_AS(frame_parser(role::server, {.inflate_buffer_size = 0}), std::invalid_argument);
  CHECK_THROWS_AS(frame_parser(role::server, {.deflate = deflate_params{.client_max_window_bits = 7}}),
                  std::invalid_argument);
}
