// The RESP client under a random mix against a real redis-server: commands pipelined from several threads at once,
// values of every size made of any bytes (CR, LF and RESP's type markers among them), in RESP3 (where pub/sub pushes
// arrive between the replies on the same connection) and RESP2, over TCP and TLS. Each calling thread works on keys
// of its own, so that a model of those keys predicts every reply: each must match its command, in order.
#include <switchboard/resp/client.hpp>

#include "resp/client_mix.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"


using namespace switchboard;
using switchboard::test::resp_mix::check_mix_with_pushes;
using switchboard::test::resp_mix::command_set;
using switchboard::test::resp_mix::connect_on;
using switchboard::test::resp_mix::io_thread;
using switchboard::test::resp_mix::message_order;
using switchboard::test::resp_mix::run_callers;
using switchboard::test::resp_mix::subscribe_by;

TEST_CASE("resp client: a random mix from several threads, with pushes between the replies, matches a model",
          "[resp][client]") {
  REQUIRE(test::have_program("redis-server"));
  test::redis_server redis;
  const unsigned seed = GENERATE(range(1u, 4u));
  check_mix_with_pushes(seed, {.port = redis.port()}, command_set::redis, subscribe_by::channels,
                        message_order::as_published);
}

TEST_CASE("resp client: the random mix in RESP2 matches the model", "[resp][client]") {
  REQUIRE(test::have_program("redis-server"));
  test::redis_server redis;
  io_thread io;
  resp::client c(io.ctx.get_executor(), {.port = redis.port(), .protocol = 2});
  REQUIRE_FALSE(connect_on(c));
  REQUIRE(c.protocol() == 2);
  run_callers(c, GENERATE(range(11u, 14u)), 3, 300, command_set::redis);
}

TEST_CASE("resp client: the random mix with pattern pushes over TLS matches the model", "[resp][client][tls]") {
  REQUIRE(test::have_program("redis-server"));
  test::tls_redis_server redis;
  // With PSUBSCRIBE here (SUBSCRIBE over TCP above): both kinds of push between the replies.
  check_mix_with_pushes(GENERATE(range(21u, 23u)),
                        {.host = "localhost", .port = redis.tls_port(), .tls = redis.trusting_client_tls()},
                        command_set::redis, subscribe_by::pattern, message_order::as_published);
}
