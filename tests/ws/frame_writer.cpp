// Frame encoding: exact bytes for the RFC 6455 §5.7 examples and every length form, masking by role, the
// control frame rules, misuse, prepared (shared) frames, and a round trip through the parser.
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>

#include "support/catch.hpp"
#include "ws/ws_test_support.hpp"

#include <set>
#include <string>
#include <vector>

using namespace switchboard::ws;
using namespace switchboard::ws::test;

namespace {

// A deterministic mask source for exact-byte tests: always the RFC 6455 §5.7 key.
struct fixed_mask {
  mask_key operator()() const noexcept { return test_key; }
};

// What `write(span)` writes into a buffer sized for a payload of `payload_size` bytes.
template <class Writer, class Write>
std::string written(Writer& w, std::size_t payload_size, Write write) {
  std::string out(w.frame_size(payload_size), '?');
  out.resize(write(std::span<char>(out.data(), out.size())));
  return out;
}

std::string frame_of(basic_frame_writer<fixed_mask>& w, opcode op, std::string_view payload, bool fin = true,
                     bool compressed = false) {
  std::string out(w.frame_size(payload.size()), '?');
  out.resize(w.write_frame(std::span<char>(out.data(), out.size()), op, payload, fin, compressed));
  return out;
}

}  // namespace

TEST_CASE("frame_writer: exact bytes", "[ws][frame_writer]") {
  basic_frame_writer<fixed_mask> server(role::server), client(role::client);
  SECTION("RFC 6455 §5.7 examples") {
    CHECK(frame_of(server, opcode::text, "Hello") == hex("81 05 48 65 6c 6c 6f"));
    CHECK(frame_of(client, opcode::text, "Hello") == hex("81 85 37 fa 21 3d 7f 9f 4d 51 58"));
    CHECK(frame_of(server, opcode::text, "Hel", false) + frame_of(server, opcode::continuation, "lo") ==
          hex("01 03 48 65 6c 80 02 6c 6f"));
    CHECK(frame_of(server, opcode::ping, "Hello") == hex("89 05 48 65 6c 6c 6f"));
    CHECK(frame_of(client, opcode::pong, "Hello") == hex("8a 85 37 fa 21 3d 7f 9f 4d 51 58"));
  }
  SECTION("every length form, the same as the reference builder") {
    for (std::size_t n : {0, 1, 125, 126, 127, 65535, 65536, 70000}) {
      const std::string payload(n, 'x');
      CHECK(frame_of(server, opcode::binary, payload) == raw_frame({.opcode = 0x2, .masked = false}, payload));
      CHECK(frame_of(client, opcode::binary, payload) == raw_frame({.opcode = 0x2}, payload));
      CHECK(server.frame_size(n) == header_size(n, false) + n);
      CHECK(client.frame_size(n) == header_size(n, true) + n);
    }
  }
  SECTION("RSV1 marks the first frame of a compressed message") {
    CHECK(frame_of(server, opcode::text, "x", false, true) == hex("41 01 78"));
  }
  SECTION("control frames") {
    using out_t = std::span<char>;
    CHECK(written(server, 0, [&](out_t o) { return server.write_close(o); }) == hex("88 00"));
    CHECK(written(server, 2, [&](out_t o) { return server.write_close(o, close_code::normal); }) == hex("88 02 03 e8"));
    CHECK(written(server, 5, [&](out_t o) { return server.write_close(o, close_code::going_away, "bye"); }) ==
          hex("88 05 03 e9 62 79 65"));
    CHECK(written(server, 2, [&](out_t o) { return server.write_ping(o, "hi"); }) == hex("89 02 68 69"));
    CHECK(written(server, 2, [&](out_t o) { return server.write_pong(o, "hi"); }) == hex("8a 02 68 69"));
    CHECK(written(client, 0, [&](out_t o) { return client.write_ping(o); }) == hex("89 80 37 fa 21 3d"));
  }
}

TEST_CASE("frame_writer: misuse throws", "[ws][frame_writer]") {
  basic_frame_writer<fixed_mask> w(role::server);
  std::string out(1024, '\0');
  std::span<char> buf(out.data(), out.size());
  CHECK_THROWS_AS(w.write_ping(buf, std::string(126, 'p')), std::invalid_argument);
  CHECK_THROWS_AS(w.write_frame(buf, opcode::ping, "x", false), std::invalid_argument);
  CHECK_THROWS_AS(w.write_frame(buf, opcode::ping, "x", true, true), std::invalid_argument);
  CHECK_THROWS_AS(w.write_frame(buf, opcode::continuation, "x", true, true), std::invalid_argument);
  CHECK_THROWS_AS(w.write_close(buf, close_code::no_status), std::invalid_argument);
  CHECK_THROWS_AS(w.write_close(buf, close_code::abnormal), std::invalid_argument);
  CHECK_THROWS_AS(w.write_close(buf, static_cast<close_code>(2000)), std::invalid_argument);
  CHECK_THROWS_AS(w.write_close(buf, close_code::normal, std::string(124, 'r')), std::invalid_argument);
  CHECK_THROWS_AS(w.write_close(buf, close_code::normal, "\xff"), std::invalid_argument);
  CHECK_NOTHROW(w.write_close(buf, static_cast<close_code>(4000), std::string(123, 'r')));
  // The generic paths keep the close rule too (§5.5.1): one byte, a code reserved for local use, a reason that
  // is not UTF-8.
  for (const std::string_view bad : {std::string_view("\x03", 1), std::string_view("\x03\xed", 2),
                                     std::string_view("\x03\xe8\xff", 3)}) {
    CHECK_THROWS_AS(w.write_frame(buf, opcode::close, bad), std::invalid_argument);
    CHECK_THROWS_AS(prepared_frame::make(opcode::close, bad), std::invalid_argument);
  }
  CHECK(w.write_frame(buf, opcode::close, std::string_view("\x03\xe8ok", 4)) == 6);
  CHECK(prepared_frame::make(opcode::close, {}).bytes() == hex("88 00"));
  CHECK_THROWS_AS(w.write_frame(buf.first(6), opcode::text, "Hello"), std::length_error);
  CHECK_NOTHROW(w.write_frame(buf.first(7), opcode::text, "Hello"));
  frame_header too_big;
  too_big.payload_size = std::uint64_t{1} << 63;
  CHECK_THROWS_AS(encode_header(too_big, buf), std::invalid_argument);
}

TEST_CASE("frame_writer: client keys come from the mask source, fresh per frame", "[ws][frame_writer]") {
  frame_writer client(role::client);
  std::set<std::vector<std::uint8_t>> keys;
  for (int i = 0; i < 200; ++i) {
    const frame_header h = client.make_header(opcode::binary, 10);
    CHECK(h.masked);
    keys.insert({h.key.begin(), h.key.end()});
  }
  // 200 keys from a CSPRNG: a repeat has probability about 200^2 / 2^33; all equal would mean no randomness.
  CHECK(keys.size() >= 199);
  frame_writer server(role::server);
  CHECK_FALSE(server.make_header(opcode::binary, 10).masked);
}

TEST_CASE("frame_writer: what a writer writes, a parser of the other role reads back", "[ws][frame_writer]") {
  for (role sender : {role::client, role::server}) {
    frame_writer w(sender);
    const role receiver = sender == role::client ? role::server : role::client;
    std::string wire;
    auto add = [&](std::size_t payload_size, auto&& write) {
      std::string frame(w.frame_size(payload_size), '\0');
      frame.resize(write(std::span<char>(frame.data(), frame.size())));
      wire += frame;
    };
    const std::string big(70000, 'b');
    add(5, [&](std::span<char> out) { return w.write_frame(out, opcode::text, "Hello"); });
    add(3, [&](std::span<char> out) { return w.write_frame(out, opcode::binary, "par", false); });
    add(4, [&](std::span<char> out) { return w.write_ping(out, "ping"); });
    add(2, [&](std::span<char> out) { return w.write_frame(out, opcode::continuation, "ts"); });
    add(big.size(), [&](std::span<char> out) { return w.write_frame(out, opcode::binary, big); });
    add(2 + 3, [&](std::span<char> out) { return w.write_close(out, close_code::going_away, "bye"); });
    check_all_splits(receiver, {}, wire, ok({"text:Hello", "ping:ping", "binary:parts", "binary:" + big,
                                              "close:1001:bye"}));
  }
}

TEST_CASE("frame_writer: prepared frames are encoded once and shared", "[ws][frame_writer]") {
  const prepared_frame f = prepared_frame::make(opcode::text, "broadcast");
  CHECK(f.bytes() == server_frame(0x1, "broadcast"));
  CHECK(f.size() == f.bytes().size());
  const prepared_frame copy = f;
  CHECK(copy.bytes().data() == f.bytes().data());  // a copy shares the bytes
  CHECK(prepared_frame::make(opcode::binary, "z", true).bytes() == hex("c2 01 7a"));
  CHECK(prepared_frame{}.size() == 0);
  CHECK_THROWS_AS(prepared_frame::make(opcode::ping, std::string(126, 'p')), std::invalid_argument);
}
