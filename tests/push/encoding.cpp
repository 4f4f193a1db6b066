#include <switchboard/push/encoding.hpp>
#include <switchboard/push/hub.hpp>

#include "push/push_support.hpp"

#include <map>
#include <string>

using namespace switchboard;
using push::test::make_message;
using push::test::read_frame;

TEST_CASE("push encoding: SSE events carry the sequence number as id", "[push][encoding]") {
  CHECK(push::sse_message(make_message("news", 42, "hello")).view() == "id: 42\ndata: hello\n\n");
  CHECK(push::sse_message(make_message("news", 1, "a\nb\r\nc")).view() == "id: 1\ndata: a\ndata: b\ndata: c\n\n");
  CHECK(push::sse_message(make_message("news", 7, "x", {}, {{"event", "update"}})).view() ==
        "event: update\nid: 7\ndata: x\n\n");
  // An event header that cannot be an event type is left out rather than breaking the stream.
  CHECK(push::sse_message(make_message("news", 8, "x", {}, {{"event", "a\nb"}})).view() == "id: 8\ndata: x\n\n");
  // Ill-formed UTF-8 becomes U+FFFD, as the browser would decode it.
  CHECK(push::sse_message(make_message("news", 9, "a\xff")).view() == "id: 9\ndata: a\xEF\xBF\xBD\n\n");
}

TEST_CASE("push encoding: SSE gaps are named events whose id is their last number", "[push][encoding]") {
  const pubsub::gap g{"news", 3, 41, pubsub::gap_reason::retention};
  CHECK(push::sse_gap(g, "gap").view() ==
        "event: gap\nid: 41\ndata: {\"first\":3,\"last\":41,\"reason\":\"retention\",\"topic\":\"news\"}\n\n");
  CHECK_THROWS_AS(push::sse_gap(g, "a\nb"), std::invalid_argument);
  CHECK_THROWS_AS(push::sse_gap(g, ""), std::invalid_argument);  // no event field: a browser would see a message
}

TEST_CASE("push encoding: WebSocket messages are JSON with topic and seq", "[push][encoding]") {
  auto text = nlohmann::json::parse(push::ws_message_text(make_message("news", 42, "héllo", {}, {{"event", "e"}})));
  CHECK(text == nlohmann::json{{"topic", "news"}, {"seq", 42}, {"data", "héllo"}, {"event", "e"}});
  auto gap = nlohmann::json::parse(push::ws_gap_text({"news", 1, 2, pubsub::gap_reason::overflow}));
  CHECK(gap == nlohmann::json{{"topic", "news"}, {"gap", {{"first", 1}, {"last", 2}, {"reason", "overflow"}}}});
  // Not UTF-8: still valid JSON text (a text frame must be UTF-8).
  CHECK(is_valid_utf8(push::ws_message_text(make_message("news", 1, "\xff\xfe"))));
}

TEST_CASE("push encoding: frames plain and compressed read back as the text", "[push][encoding]") {
  const std::string text = push::ws_message_text(make_message("news", 3, std::string(2000, 'z')));
  CHECK(read_frame(push::ws_text_frame(text).view()) == text);
  for (int bits : {9, 12, 15}) {
    INFO(bits);
    const ws::deflate_params params{.server_no_context_takeover = true, .server_max_window_bits = bits};
    ws::deflate_compressor compressor(ws::role::server, params);
    const shared_bytes first = push::ws_compressed_frame(text, compressor);
    const shared_bytes second = push::ws_compressed_frame(text, compressor);
    CHECK(first.size() < text.size());
    CHECK(first == second);  // no context carried over: each frame stands alone, so any client can take it
    // A client that agreed a larger window (15) reads a frame compressed with a smaller one.
    CHECK(read_frame(first.view(), ws::deflate_params{.server_max_window_bits = 15}) == text);
  }
}

TEST_CASE("push encoding: one encoding per transport, shared by every client", "[push][encoding]") {
  const auto m = make_message("news", 5, "shared");
  push::detail::encodings e(m);
  std::map<int, ws::deflate_compressor> compressors;
  using kind = push::detail::variant::kind;
  const auto sse1 = e.get({kind::sse}, "gap", compressors, {});
  const auto sse2 = e.get({kind::sse}, "gap", compressors, {});
  const auto ws1 = e.get({kind::ws}, "gap", compressors, {});
  const auto ws2 = e.get({kind::ws}, "gap", compressors, {});
  const auto z15a = e.get({kind::ws_deflate, 15}, "gap", compressors, {});
  const auto z15b = e.get({kind::ws_deflate, 15}, "gap", compressors, {});
  const auto z10 = e.get({kind::ws_deflate, 10}, "gap", compressors, {});
  CHECK(sse1.data() == sse2.data());  // the same bytes, not a copy
  CHECK(ws1.data() == ws2.data());
  CHECK(z15a.data() == z15b.data());
  CHECK(z10.data() != z15a.data());   // another window size: another compressed frame
  CHECK(compressors.size() == 2);
  CHECK(read_frame(z10.view(), ws::deflate_params{.server_max_window_bits = 10}) == read_frame(ws1.view()));
}
