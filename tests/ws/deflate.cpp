// permessage-deflate (RFC 7692): negotiation tables (server and client), the §7.2.3 payload examples through
// the parser, compressor/parser round trips with and without context takeover, the decompressed-size limit,
// corrupt data, and the Autobahn 12/13-style compressed message flows fed whole and at every split.
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>

#include "support/catch.hpp"
#include "ws/ws_test_support.hpp"

#include <optional>
#include <string>
#include <vector>

using namespace switchboard::ws;
using namespace switchboard::ws::test;

namespace {

std::vector<extension> parsed(std::string_view header) {
  std::vector<extension> out;
  REQUIRE_FALSE(parse_extensions(header, out));
  return out;
}

std::optional<deflate_agreement> server_agrees(std::string_view offer, deflate_options o = {.enabled = true}) {
  return negotiate_deflate(parsed(offer), o);
}

std::string compress_message(deflate_compressor& c, std::string_view message) {
  std::string out;
  c.compress(message, true, out);
  return out;
}

// JSON-like text that compresses well, different per index.
std::string json_event(int i) {
  return R"({"topic":"prices","seq":)" + std::to_string(i) + R"(,"symbol":"ACME","bid":)" + std::to_string(100 + i % 7) +
         R"(.25,"ask":)" + std::to_string(101 + i % 5) + R"(.75,"venue":"XNAS"})";
}

std::string incompressible(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

const parser_options deflate_on{.deflate = deflate_params{}};

}  // namespace

TEST_CASE("deflate: server negotiation (RFC 7692 §7.1)", "[ws][deflate]") {
  SECTION("off by default") {
    CHECK_FALSE(negotiate_deflate(parsed("permessage-deflate"), {}));
  }
  SECTION("a plain offer is accepted with the defaults") {
    const auto a = server_agrees("permessage-deflate");
    REQUIRE(a);
    CHECK(a->response == "permessage-deflate");
    CHECK(a->params.server_max_window_bits == 15);
    CHECK(a->params.client_max_window_bits == 15);
    CHECK_FALSE(a->params.server_no_context_takeover);
    CHECK_FALSE(a->params.client_no_context_takeover);
  }
  SECTION("every parameter echoed") {
    const auto a = server_agrees(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
        "client_max_window_bits=12");
    REQUIRE(a);
    CHECK(a->response ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
          "client_max_window_bits=12");
    CHECK(a->params.server_no_context_takeover);
    CHECK(a->params.client_no_context_takeover);
    CHECK(a->params.server_max_window_bits == 10);
    CHECK(a->params.client_max_window_bits == 12);
  }
  SECTION("a requested server window of 15 is still answered (§7.1.2.1)") {
    CHECK(server_agrees("permessage-deflate; server_max_window_bits=15")->response ==
          "permessage-deflate; server_max_window_bits=15");
  }
  SECTION("a bare client_max_window_bits lets the server limit the client") {
    const auto a = server_agrees("permessage-deflate; client_max_window_bits",
                                 {.enabled = true, .client_max_window_bits = 10});
    REQUIRE(a);
    CHECK(a->response == "permessage-deflate; client_max_window_bits=10");
    CHECK(a->params.client_max_window_bits == 10);
  }
  SECTION("server limits apply to the answer") {
    const auto a = server_agrees("permessage-deflate; server_max_window_bits=14",
                                 {.enabled = true, .server_no_context_takeover = true, .server_max_window_bits = 11});
    REQUIRE(a);
    CHECK(a->response == "permessage-deflate; server_no_context_takeover; server_max_window_bits=11");
  }
  SECTION("invalid offers are declined and the next one is taken") {
    const char* invalid[] = {
        "permessage-deflate; unknown_param",                                // parameter not defined
        "permessage-deflate; server_no_context_takeover=1",                 // flag with a value
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  // duplicate
        "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10",    // duplicate
        "permessage-deflate; server_max_window_bits",                       // value required
        "permessage-deflate; server_max_window_bits=7",                     // out of range
        "permessage-deflate; server_max_window_bits=16",                    // out of range
        "permessage-deflate; server_max_window_bits=08",                    // leading zero
        "permessage-deflate; client_max_window_bits=0x9",                   // not decimal
        "permessage-deflate; server_max_window_bits=8",                     // zlib cannot deflate with 256 bytes
    };
    for (const char* offer : invalid) {
      INFO(offer);
      CHECK_FALSE(server_agrees(offer));
      const auto next = server_agrees(std::string(offer) + ", permessage-deflate; client_no_context_takeover");
      REQUIRE(next);
      CHECK(next->response == "permessage-deflate; client_no_context_takeover");
    }
  }
  SECTION("quoted values are unescaped before they are checked") {
    const auto a = server_agrees("permessage-deflate; server_max_window_bits=\"10\"");
    REQUIRE(a);
    CHECK(a->params.server_max_window_bits == 10);
  }
  SECTION("a server limiting the client window declines offers that cannot honour it (§7.1.2.2)") {
    CHECK_FALSE(server_agrees("permessage-deflate", {.enabled = true, .client_max_window_bits = 10}));
  }
  SECTION("other extensions are skipped") {
    const auto a = server_agrees("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits");
    REQUIRE(a);
    CHECK(a->response == "permessage-deflate");
  }
  SECTION("bad configuration throws") {
    CHECK_THROWS_AS(server_agrees("permessage-deflate", {.enabled = true, .server_max_window_bits = 8}),
                    std::invalid_argument);
    CHECK_THROWS_AS(server_agrees("permessage-deflate", {.enabled = true, .compression_level = 10}),
                    std::invalid_argument);
  }
}

TEST_CASE("deflate: each end compresses at the zlib settings of its own options", "[ws][deflate]") {
  const deflate_options server{.enabled = true, .compression_level = 0, .memory_level = 9};
  const deflate_options client{.enabled = true, .compression_level = 9, .memory_level = 1};
  const auto a = negotiate_deflate(parsed(deflate_offer(client)), server);
  REQUIRE(a);
  CHECK(a->params.compression_level == 0);
  CHECK(a->params.memory_level == 9);
  std::optional<deflate_params> agreed;
  REQUIRE_FALSE(accept_deflate_response(parsed(a->response), client, agreed));
  REQUIRE(agreed);
  CHECK(agreed->compression_level == 9);
  CHECK(agreed->memory_level == 1);
  // Level 0 only stores: text that compresses well comes out no smaller. Level 9 shrinks it.
  std::string text;
  for (int i = 0; i < 50; ++i) text += json_event(i);
  deflate_compressor stored(role::server, a->params), squeezed(role::client, *agreed);
  CHECK(compress_message(stored, text).size() >= text.size());
  CHECK(compress_message(squeezed, text).size() < text.size() / 2);
}

TEST_CASE("deflate: client offer and response checks", "[ws][deflate]") {
  SECTION("offers") {
    CHECK(deflate_offer({}).empty());
    CHECK(deflate_offer({.enabled = true}) == "permessage-deflate; client_max_window_bits");
    CHECK(deflate_offer({.enabled = true, .server_no_context_takeover = true, .client_no_context_takeover = true,
                         .server_max_window_bits = 10, .client_max_window_bits = 11}) ==
          "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; "
          "client_max_window_bits=11");
    CHECK_THROWS_AS(deflate_offer({.enabled = true, .client_max_window_bits = 8}), std::invalid_argument);
  }
  SECTION("responses") {
    const deflate_options o{.enabled = true, .server_max_window_bits = 12, .client_max_window_bits = 14};
    std::optional<deflate_params> agreed;
    CHECK_FALSE(accept_deflate_response({}, o, agreed));
    CHECK_FALSE(agreed);  // declined: no compression

    CHECK_FALSE(accept_deflate_response(parsed("permessage-deflate; server_max_window_bits=10; "
                                               "client_max_window_bits=9; client_no_context_takeover"),
                                        o, agreed));
    REQUIRE(agreed);
    CHECK(agreed->server_max_window_bits == 10);
    CHECK(agreed->client_max_window_bits == 9);
    CHECK(agreed->client_no_context_takeover);

    // Without a server_max_window_bits answer the server uses 15, more than the 12 asked for.
    CHECK(accept_deflate_response(parsed("permessage-deflate"), o, agreed) == error::unexpected_extension);
    const char* rejected[] = {
        "permessage-deflate; server_max_window_bits=13",                 // larger than asked
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits=8",   // zlib cannot compress so
        "permessage-deflate; server_max_window_bits=12; client_max_window_bits",     // value required in a response
        "permessage-deflate; server_max_window_bits=12; foo",                        // unknown parameter
        "permessage-deflate; server_max_window_bits=12, permessage-deflate; server_max_window_bits=12",  // twice
        "x-unknown",                                                                  // never offered
    };
    for (const char* r : rejected) {
      INFO(r);
      CHECK(accept_deflate_response(parsed(r), o, agreed) == error::unexpected_extension);
    }
    // A client window limit above the 14 the offer announced: the server may ignore the offer's value (RFC 7692
    // §7.1.2.2), and the client keeps to its own.
    CHECK_FALSE(accept_deflate_response(
        parsed("permessage-deflate; server_max_window_bits=12; client_max_window_bits=15"), o, agreed));
    REQUIRE(agreed);
    CHECK(agreed->client_max_window_bits == 14);
    const deflate_options wants_snct{.enabled = true, .server_no_context_takeover = true};
    CHECK(accept_deflate_response(parsed("permessage-deflate"), wants_snct, agreed) == error::unexpected_extension);
    CHECK_FALSE(accept_deflate_response(parsed("permessage-deflate; server_no_context_takeover"), wants_snct, agreed));
    CHECK(accept_deflate_response(parsed("permessage-deflate"), {}, agreed) == error::unexpected_extension);
  }
  SECTION("what a server answers, a client accepts") {
    const deflate_options client{.enabled = true, .client_no_context_takeover = true, .server_max_window_bits = 11};
    const auto a = negotiate_deflate(parsed(deflate_offer(client)), {.enabled = true});
    REQUIRE(a);
    std::optional<deflate_params> agreed;
    REQUIRE_FALSE(accept_deflate_response(parsed(a->response), client, agreed));
    REQUIRE(agreed);
    CHECK(agreed->server_max_window_bits == a->params.server_max_window_bits);
    CHECK(agreed->client_max_window_bits == a->params.client_max_window_bits);
    CHECK(agreed->client_no_context_takeover == a->params.client_no_context_takeover);
    CHECK(agreed->server_no_context_takeover == a->params.server_no_context_takeover);
  }
}

TEST_CASE("deflate: RFC 7692 §7.2.3 payloads through the parser", "[ws][deflate]") {
  SECTION("7.2.3.1 a compressed message, whole and fragmented") {
    check_all_splits(role::client, deflate_on, hex("c1 07 f2 48 cd c9 c9 07 00"), ok({"text:Hello"}));
    check_all_splits(role::client, deflate_on, hex("41 03 f2 48 cd 80 04 c9 c9 07 00"), ok({"text:Hello"}));
  }
  SECTION("7.2.3.2 the second message refers to the first one's window") {
    check_all_splits(role::client, deflate_on, hex("c1 07 f2 48 cd c9 c9 07 00 c1 05 f2 00 11 00 00"),
                     ok({"text:Hello", "text:Hello"}));
  }
  SECTION("7.2.3.3 a stored (uncompressed) block") {
    check_all_splits(role::client, deflate_on, hex("c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00"), ok({"text:Hello"}));
  }
  SECTION("7.2.3.4 a final block (BFINAL) followed by an empty stored block header") {
    check_all_splits(role::client, deflate_on, hex("c1 08 f3 48 cd c9 c9 07 00 00"), ok({"text:Hello"}));
    // The next message may still use the window: the final block does not end the context.
    check_all_splits(role::client, deflate_on, hex("c1 08 f3 48 cd c9 c9 07 00 00 c1 05 f2 00 11 00 00"),
                     ok({"text:Hello", "text:Hello"}));
  }
  SECTION("a final block that ends the payload exactly") {
    check_all_splits(role::client, deflate_on, hex("c1 07 f3 48 cd c9 c9 07 00"), ok({"text:Hello"}));
  }
  SECTION("final blocks whose output is drained after their input was consumed (found by fuzzing)") {
    const parser_options tiny{.deflate = deflate_params{}, .inflate_buffer_size = 3};
    check_all_splits(role::client, tiny, hex("c1 07 f3 48 cd c9 c9 07 00"), ok({"text:Hello"}));
    check_all_splits(role::client, tiny, hex("c1 08 f3 48 01 00 23 00 83 00"),
                     ok({"text:HdHdHdHdHdHdHdHdHdHdHdHdHdHdHdHdHR"}));
  }
  SECTION("7.2.3.5 two blocks in one message") {
    check_all_splits(role::client, deflate_on, hex("c1 0d f2 48 05 00 00 00 ff ff ca c9 c9 07 00"),
                     ok({"text:Hello"}));
  }
  SECTION("7.2.3.6 an empty message as the single byte 00, and as an empty payload") {
    check_all_splits(role::client, deflate_on, hex("c1 01 00 c1 00 c1 07 f2 48 cd c9 c9 07 00"),
                     ok({"text:", "text:", "text:Hello"}));
  }
  SECTION("an uncompressed message between compressed ones (RSV1 clear)") {
    check_all_splits(role::client, deflate_on, hex("c1 07 f2 48 cd c9 c9 07 00 81 02 68 69"),
                     ok({"text:Hello", "text:hi"}));
  }
}

TEST_CASE("deflate: a match further back than the agreed window is read the same at every split",
          "[ws][deflate]") {
  // The server agreed to compress with a 512-byte window and then refers 600 bytes back. zlib, inflating with the
  // agreed window, accepted that in one call and refused it across calls; the verdict must not depend on the split.
  const std::string block = incompressible(600);
  deflate_compressor wide(role::server, {});  // 15 bits
  const std::string payload = compress_message(wide, block + block);
  frame_writer server(role::server);  // a server's frames are not masked: no key is drawn
  std::string frame(server.frame_size(payload.size()), '\0');
  frame.resize(server.write_frame(frame, opcode::binary, payload, true, true));
  const parser_options narrow{.deflate = deflate_params{.server_max_window_bits = 9}};
  check_all_splits(role::client, narrow, frame, ok({"binary:" + block + block}));
}

TEST_CASE("deflate: compressed-frame rules and corrupt data", "[ws][deflate]") {
  SECTION("RSV1 on a continuation frame (RFC 7692 §6.1)") {
    check_all_splits(role::client, deflate_on, hex("41 03 f2 48 cd c0 04 c9 c9 07 00"),
                     failed(error::misplaced_compressed_bit));
  }
  SECTION("RSV1 on a control frame") {
    check_all_splits(role::client, deflate_on, hex("c9 00"), failed(error::misplaced_compressed_bit));
  }
  SECTION("bytes that are not DEFLATE fail with 1007") {
    check_all_splits(role::client, deflate_on, hex("c1 03 ff ff ff"), failed(error::invalid_compressed_data));
    // BTYPE 11 is reserved.
    check_all_splits(role::client, deflate_on, hex("c2 01 06"), failed(error::invalid_compressed_data));
  }
  SECTION("a message that stops inside a block fails") {
    check_all_splits(role::client, deflate_on, hex("c1 03 f2 48 cd"), failed(error::invalid_compressed_data));
  }
  SECTION("text decoded before corrupt data is checked first, however the input is split (found by fuzzing)") {
    // Inflates to bytes that are not UTF-8, then hits an invalid block: 1007 for UTF-8 either way.
    check_all_splits(role::server, deflate_on, hex("c1 87 37 6b c1 30 3d 85 37 fa 21 fa c5"),
                     failed(error::invalid_utf8));
  }
  SECTION("text is checked as UTF-8 after inflation") {
    deflate_compressor c(role::server, {});
    const std::string payload = compress_message(c, "bad \xed\xa0\x80 text");
    check_all_splits(role::client, deflate_on, raw_frame({.rsv1 = true, .opcode = 0x1, .masked = false}, payload),
                     failed(error::invalid_utf8));
  }
}

TEST_CASE("deflate: 12/13 compressed message flows, compressor to parser", "[ws][deflate]") {
  struct variant {
    const char* name;
    deflate_params params;
    std::size_t inflate_buffer;
  };
  const variant variants[] = {
      {"context takeover", {}, 16 * 1024},
      {"no context takeover", {.server_no_context_takeover = true, .client_no_context_takeover = true}, 16 * 1024},
      {"small windows", {.server_max_window_bits = 9, .client_max_window_bits = 9}, 16 * 1024},
      {"one-byte inflate buffer", {}, 1},
      {"seven-byte inflate buffer, no takeover", {.server_no_context_takeover = true}, 7},
  };
  for (const variant& v : variants) {
    DYNAMIC_SECTION(v.name) {
      const parser_options o{.deflate = v.params, .inflate_buffer_size = v.inflate_buffer};
      for (role sender : {role::server, role::client}) {
        const role receiver = sender == role::server ? role::client : role::server;
        deflate_compressor c(sender, v.params);
        const bool masked = sender == role::client;
        std::string wire;
        std::vector<std::string> expected;
        for (int i = 0; i < 8; ++i) {
          const std::string m = json_event(i);
          wire += raw_frame({.rsv1 = true, .opcode = 0x1, .masked = masked}, compress_message(c, m));
          expected.push_back("text:" + m);
        }
        // A message compressed in three pieces and sent as three frames, with a ping between them.
        std::string p1, p2, p3;
        c.compress("first part, ", false, p1);
        c.compress("second part, ", false, p2);
        c.compress("last part", true, p3);
        wire += raw_frame({.fin = false, .rsv1 = true, .opcode = 0x1, .masked = masked}, p1) +
                raw_frame({.opcode = 0x9, .masked = masked}, "keepalive") +
                raw_frame({.fin = false, .opcode = 0x0, .masked = masked}, p2) +
                raw_frame({.opcode = 0x0, .masked = masked}, p3);
        expected.push_back("ping:keepalive");
        expected.push_back("text:first part, second part, last part");
        // Binary that does not compress, and an empty message.
        const std::string noise = incompressible(500);
        wire += raw_frame({.rsv1 = true, .opcode = 0x2, .masked = masked}, compress_message(c, noise));
        expected.push_back("binary:" + noise);
        wire += raw_frame({.rsv1 = true, .opcode = 0x1, .masked = masked}, compress_message(c, ""));
        expected.push_back("text:");
        check_all_splits(receiver, o, wire, ok(expected));
      }
    }
  }
}

TEST_CASE("deflate: the compressor's output", "[ws][deflate]") {
  SECTION("RFC 7692 §7.2.3.1/2: Hello, then Hello again with the shared window") {
    deflate_compressor c(role::server, {});
    CHECK(compress_message(c, "Hello") == hex("f2 48 cd c9 c9 07 00"));
    CHECK(compress_message(c, "Hello") == hex("f2 00 11 00 00"));
  }
  SECTION("without context takeover every message compresses alike, so it can be shared") {
    deflate_compressor c(role::server, {.server_no_context_takeover = true});
    CHECK(compress_message(c, "Hello") == hex("f2 48 cd c9 c9 07 00"));
    CHECK(compress_message(c, "Hello") == hex("f2 48 cd c9 c9 07 00"));
  }
  SECTION("an empty message is 00, however often") {
    deflate_compressor c(role::client, {});
    CHECK(compress_message(c, "") == hex("00"));
    CHECK(compress_message(c, "") == hex("00"));
    std::string out;
    c.compress("", false, out);
    c.compress("", true, out);
    CHECK(out == hex("00"));
  }
  SECTION("takeover shrinks a stream of similar messages") {
    deflate_compressor with(role::server, {}), without(role::server, {.server_no_context_takeover = true});
    std::size_t a = 0, b = 0;
    for (int i = 0; i < 50; ++i) {
      a += compress_message(with, json_event(i)).size();
      b += compress_message(without, json_event(i)).size();
    }
    CHECK(a < b);
  }
  SECTION("bad parameters throw") {
    CHECK_THROWS_AS(deflate_compressor(role::server, {.server_max_window_bits = 8}), std::invalid_argument);
    CHECK_THROWS_AS(deflate_compressor(role::client, {.compression_level = 10}), std::invalid_argument);
    CHECK_THROWS_AS(deflate_decompressor(role::client, {.server_max_window_bits = 16}, 100), std::invalid_argument);
  }
}

TEST_CASE("deflate: the decompressed size limit", "[ws][deflate]") {
  // 4 MiB of zeros deflate to about 4 KiB: a bomb for a 64 KiB limit.
  deflate_compressor c(role::client, {});
  const std::string bomb = compress_message(c, std::string(4 << 20, '\0'));
  REQUIRE(bomb.size() < 8 * 1024);
  const std::uint64_t limit = 64 * 1024;

  SECTION("the decompressor stops at most one byte past the limit") {
    deflate_decompressor d(role::server, {}, limit);
    std::vector<char> out(16 * 1024);
    std::size_t offset = 0;
    std::uint64_t total = 0;
    inflate_result r;
    do {
      r = d.inflate(std::span<const char>(bomb).subspan(offset), true, out);
      offset += r.consumed;
      total += r.produced;
    } while (!r.error && !r.message_done);
    CHECK(r.error == error::message_too_big);
    CHECK(total <= limit + 1);
  }
  SECTION("the parser fails the message with 1009") {
    const parser_options o{.max_message_size = limit, .deflate = deflate_params{}};
    check_all_splits(role::server, o, raw_frame({.rsv1 = true, .opcode = 0x2}, bomb), failed(error::message_too_big));
  }
  SECTION("a message inflating to exactly the limit passes") {
    deflate_compressor c2(role::client, {});
    const std::string exact = compress_message(c2, std::string(limit, 'z'));
    const parser_options o{.max_message_size = limit, .deflate = deflate_params{}};
    check_all_splits(role::server, o, raw_frame({.rsv1 = true, .opcode = 0x2}, exact),
                     ok({"binary:" + std::string(limit, 'z')}));
  }
  SECTION("the compressed size counts against the limit too") {
    const parser_options o{.max_message_size = 100, .deflate = deflate_params{}};
    check_all_splits(role::server, o, raw_frame({.rsv1 = true, .opcode = 0x2}, incompressible(200)),
                     failed(error::message_too_big));
  }
}

TEST_CASE("deflate: bytes zlib did not take stay masked in the caller's buffer", "[ws][deflate]") {
  deflate_compressor c(role::client, {});
  const std::string text(5000, 'q');
  std::string buffer = raw_frame({.rsv1 = true, .opcode = 0x1}, compress_message(c, text));
  const std::string original = buffer;
  frame_parser p(role::server, {.deflate = deflate_params{}, .inflate_buffer_size = 64});
  const auto r = p.parse(std::span<char>(buffer.data(), buffer.size()));
  REQUIRE(r.event == parse_event::data);
  CHECK(r.payload == std::string(64, 'q'));
  CHECK(buffer.substr(r.consumed) == original.substr(r.consumed));
}

// Hidden (it needs about 9 GiB of memory and several seconds): `test_ws "[.huge]"`. zlib counts in 32 bits, so a
// message of 4 GiB or more must be given to it in parts; a cast would cut the count and the message with it.
TEST_CASE("deflate: a message over 4 GiB round-trips whole", "[ws][deflate][.huge]") {
  const std::size_t size = (std::size_t{1} << 32) + 7;
  std::string message(size, 'x');
  for (const std::size_t at : {std::size_t{0}, (std::size_t{1} << 32) - 1, std::size_t{1} << 32, size - 1}) {
    message[at] = 'y';
  }
  // Level 0 stores the bytes, so the compressed message is over 4 GiB too and the decompressor's input is as well.
  deflate_compressor c(role::client, {.compression_level = 0});
  const std::string compressed = compress_message(c, message);
  REQUIRE(compressed.size() > size);

  deflate_decompressor d(role::server, {}, size);
  std::vector<char> out(64 << 20);
  std::size_t consumed = 0, produced = 0;
  bool alike = true;
  inflate_result r;
  do {
    r = d.inflate(std::span<const char>(compressed).subspan(consumed), true, out);
    alike = alike && std::string_view(out.data(), r.produced) == std::string_view(message).substr(produced, r.produced);
    consumed += r.consumed;
    produced += r.produced;
  } while (!r.error && !r.message_done && (r.consumed > 0 || r.produced > 0));
  CHECK_FALSE(r.error);
  CHECK(r.message_done);
  CHECK(consumed == compressed.size());
  CHECK(produced == size);
  CHECK(alike);
}
