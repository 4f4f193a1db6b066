// The long-poll wire format: encoding what the broker read, and reading it back.
#include <switchboard/longpoll/batch.hpp>
#include <switchboard/pubsub/broker.hpp>

#include "support/catch.hpp"

#include <asio/io_context.hpp>

#include <string>

using namespace switchboard;

namespace {

pubsub::read_result read_back(std::initializer_list<std::string> payloads, std::uint64_t after, std::size_t keep) {
  asio::io_context ctx;
  pubsub::broker broker(ctx, {.retention = {.max_messages = keep}});
  for (const auto& p : payloads) broker.publish("t", {.payload = shared_bytes::copy(p)});
  return broker.read("t", after, 100);
}

}  // namespace

TEST_CASE("a batch is the JSON a JSON library would write for it, byte for byte", "[longpoll][batch]") {
  // Every byte that JSON escapes (RFC 8259 §7), and some that it does not: DEL, '/', two- and four-byte UTF-8.
  std::string tricky = "quote \" backslash \\ / del \x7f \xc3\xa9 \xf0\x9f\x98\x80 controls";
  for (char c = 0; c < 0x20; ++c) tricky += c;
  const std::string binary("\x00\xff\xfe\x80", 4);
  nlohmann::json messages = nlohmann::json::array();
  messages.push_back({{"data", tricky}, {"seq", 1}});
  messages.push_back({{"data", "AP/+gA=="}, {"encoding", "base64"}, {"seq", 2}});
  const nlohmann::json plain{{"cursor", 2}, {"messages", messages}};
  CHECK(longpoll::encode_batch(read_back({tricky, binary}, 0, 10)) == plain.dump());

  const nlohmann::json with_gap{{"cursor", 4},
                                {"gap", {{"first", 1}, {"last", 2}, {"reason", "retention"}}},
                                {"messages", {{{"data", "c"}, {"seq", 3}}, {{"data", "d"}, {"seq", 4}}}}};
  CHECK(longpoll::encode_batch(read_back({"a", "b", "c", "d"}, 0, 2)) == with_gap.dump());

  const nlohmann::json reset{{"cursor", 1}, {"messages", nlohmann::json::array()}, {"reset", true}};
  CHECK(longpoll::encode_batch(read_back({"a"}, 7, 2)) == reset.dump());

  // A gap says why: here messages that a bridge to other processes lost (pubsub::gap_reason::upstream).
  pubsub::read_result upstream;
  upstream.missed = pubsub::gap{"t", 3, 5, pubsub::gap_reason::upstream};
  upstream.next_cursor = 5;
  const nlohmann::json upstream_gap{{"cursor", 5},
                                    {"gap", {{"first", 3}, {"last", 5}, {"reason", "upstream"}}},
                                    {"messages", nlohmann::json::array()}};
  CHECK(longpoll::encode_batch(upstream) == upstream_gap.dump());
}

TEST_CASE("a batch survives the trip through JSON", "[longpoll][batch]") {
  SECTION("text and binary payloads") {
    const std::string binary("\x00\xff\xfe\x80", 4);
    const auto b = longpoll::decode_batch(longpoll::encode_batch(read_back({"héllo", binary, ""}, 0, 10)));
    REQUIRE(b);
    REQUIRE(b->messages.size() == 3);
    CHECK(b->messages[0].sequence == 1);
    CHECK(b->messages[0].data == "héllo");
    CHECK(b->messages[1].data == binary);
    CHECK(b->messages[2].data.empty());
    CHECK(b->cursor == 3);
    CHECK_FALSE(b->missed);
    CHECK_FALSE(b->reset);
  }
  SECTION("a gap before the messages") {
    const auto b = longpoll::decode_batch(longpoll::encode_batch(read_back({"a", "b", "c", "d"}, 0, 2)));
    REQUIRE(b);
    REQUIRE(b->missed);
    CHECK(b->missed->first == 1);
    CHECK(b->missed->last == 2);
    REQUIRE(b->messages.size() == 2);
    CHECK(b->messages[0].sequence == 3);
    CHECK(b->cursor == 4);
  }
  SECTION("a reset") {
    const auto b = longpoll::decode_batch(longpoll::encode_batch(read_back({"a"}, 7, 2)));
    REQUIRE(b);
    CHECK(b->reset);
    CHECK(b->cursor == 1);
    CHECK(b->messages.empty());
  }
  SECTION("nothing new") {
    const auto b = longpoll::decode_batch(longpoll::encode_batch(read_back({"a"}, 1, 2)));
    REQUIRE(b);
    CHECK(b->messages.empty());
    CHECK(b->cursor == 1);
  }
}

TEST_CASE("malformed batches are refused", "[longpoll][batch]") {
  const char* bad[] = {
      "",
      "[]",
      "{\"messages\": []}",
      "{\"cursor\": 1}",
      "{\"cursor\": -1, \"messages\": []}",
      "{\"cursor\": 1, \"messages\": {}}",
      "{\"cursor\": 1, \"messages\": [1]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": 5}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"x\", \"encoding\": \"hex\"}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"abc\", \"encoding\": \"base64\"}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"a=bc\", \"encoding\": \"base64\"}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"a!bc\", \"encoding\": \"base64\"}]}",
      // Blanks, line ends and '-' around the digits, which OpenSSL's decoder would skip.
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"    QUJD\", \"encoding\": \"base64\"}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"QUJD\\r\\n\\r\\n\", \"encoding\": \"base64\"}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"QUJD----\", \"encoding\": \"base64\"}]}",
      "{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"    \", \"encoding\": \"base64\"}]}",
      "{\"cursor\": 3, \"messages\": [{\"seq\": 1, \"data\": \"\"}, {\"seq\": 3, \"data\": \"\"}]}",
      "{\"cursor\": 2, \"messages\": [{\"seq\": 1, \"data\": \"\"}]}",
      // Nothing follows the largest number (adding one to it wrapped to 0, which switched the check off).
      "{\"cursor\": 5, \"messages\": [{\"seq\": 18446744073709551615, \"data\": \"\"}, {\"seq\": 5, \"data\": \"\"}]}",
      "{\"cursor\": 5, \"gap\": {\"first\": 1, \"last\": 18446744073709551615}, \"messages\": [{\"seq\": 5, \"data\": \"\"}]}",
      "{\"cursor\": 5, \"gap\": {\"first\": 3, \"last\": 2}, \"messages\": []}",
      "{\"cursor\": 5, \"gap\": {\"first\": 1, \"last\": 2}, \"messages\": [{\"seq\": 5, \"data\": \"\"}]}",
      "{\"cursor\": 5, \"messages\": [], \"reset\": 1}",
  };
  for (const char* text : bad) {
    INFO(text);
    CHECK_FALSE(longpoll::decode_batch(text));
  }
  CHECK(longpoll::decode_batch("{\"cursor\": 1, \"messages\": [{\"seq\": 1, \"data\": \"YQ==\", \"encoding\": \"base64\"}]}")
            ->messages[0]
            .data == "a");
}
