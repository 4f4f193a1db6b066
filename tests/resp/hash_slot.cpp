// Redis Cluster hash slots: CRC16-XMODEM and hash tags, checked against the specification's examples and against
// a real Redis (CLUSTER KEYSLOT) for keys of every shape.
#include <switchboard/resp/hash_slot.hpp>

#include "support/catch.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using namespace switchboard;

TEST_CASE("hash slot: CRC16 and hash tags", "[resp][hash_slot]") {
  CHECK(resp::crc16("123456789") == 0x31C3);  // the check value of CRC16-XMODEM
  CHECK(resp::crc16("") == 0);
  CHECK(resp::hash_slot("foo") == 12182);      // values Redis gives for CLUSTER KEYSLOT
  CHECK(resp::hash_slot("bar") == 5061);
  // Hash tags (Redis Cluster specification, "Hash tags").
  CHECK(resp::hash_tag("{user1000}.following") == "user1000");
  CHECK(resp::hash_tag("foo{}{bar}") == "foo{}{bar}");  // the first `{` is followed by `}`: the whole key
  CHECK(resp::hash_tag("foo{{bar}}zap") == "{bar");      // from the first `{` to the first `}` after it
  CHECK(resp::hash_tag("foo{bar}{zap}") == "bar");       // only the first tag
  CHECK(resp::hash_tag("no tag") == "no tag");
  CHECK(resp::hash_tag("open{only") == "open{only");
  CHECK(resp::hash_slot("{user1000}.following") == resp::hash_slot("{user1000}.followers"));
}

TEST_CASE("hash slot: the same as Redis's CLUSTER KEYSLOT", "[resp][hash_slot]") {
  REQUIRE(test::have_program("redis-server"));
  test::redis_server redis({"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"});
  asio::io_context ctx;
  test::redis_client c(ctx, redis.port());
  std::vector<std::string> keys = {"", "a", "foo", "{a}b", "x{}y", "{}{a}", "{{a}}", "}{a}", "chat.room.42",
                                   std::string("bin\0ary", 7), "\xff\xfe", "{user1000}.following"};
  for (int i = 0; i < 200; ++i) keys.push_back("key:" + std::to_string(i * 7919));
  for (const std::string& key : keys) {
    INFO(key);
    CHECK(c.call({"CLUSTER", "KEYSLOT", key}).integer == resp::hash_slot(key));
  }
}
