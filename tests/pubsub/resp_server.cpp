// The broker's Redis-protocol front end: every command with Redis 7's exact reply bytes (and, where a real
// redis-server is installed, the same script run against both), subscribed mode in RESP2 and RESP3, AUTH, limits,
// the output-limit disconnect of a client that never reads, interplay with in-process subscribers, and the drain.
#include <switchboard/core/metrics.hpp>
#include <switchboard/core/runtime.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/detail/resp_commands.hpp>
#include <switchboard/pubsub/detail/resp_frames.hpp>
#include <switchboard/pubsub/resp_server.hpp>
#include <switchboard/resp/client.hpp>

#include "pubsub/resp_support.hpp"
#include "resp/client_mix.hpp"
#include "support/catch.hpp"
#include "support/drain_checks.hpp"
#include "support/eventually.hpp"
#include "support/raw_http.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using switchboard::pubsub::test::bulk_reply;
using switchboard::pubsub::test::call;
using switchboard::pubsub::test::front_end;
using switchboard::pubsub::test::multibulk;
using switchboard::pubsub::test::next;
using switchboard::pubsub::test::printable;
using switchboard::pubsub::test::random_source;
using switchboard::test::eventually;
using switchboard::test::redis_client;
using switchboard::test::run_until;

TEST_CASE("resp_server: connection commands answer as Redis 7", "[pubsub][resp_server]") {
  front_end fe;
  asio::io_context ctx;
  redis_client c(ctx, fe.port());

  CHECK(call(c, {"PING"}) == "+PONG\r\n");
  CHECK(call(c, {"ping", "hi"}) == "$2\r\nhi\r\n");
  CHECK(call(c, {"PING", "a", "b"}) == "-ERR wrong number of arguments for 'ping' command\r\n");
  CHECK(call(c, {"ECHO", "x y"}) == "$3\r\nx y\r\n");
  CHECK(call(c, {"echo"}) == "-ERR wrong number of arguments for 'echo' command\r\n");
  CHECK(call(c, {"GET", "k", "v"}) == "-ERR unknown command 'GET', with args beginning with: 'k' 'v' \r\n");
  CHECK(call(c, {"FLUSHALL"}) == "-ERR unknown command 'FLUSHALL', with args beginning with: \r\n");
  CHECK(call(c, {"publish", "a"}) == "-ERR wrong number of arguments for 'publish' command\r\n");
  CHECK(call(c, {"PUBLISH", "nobody", "x"}) == ":0\r\n");

  SECTION("CLIENT") {
    const resp::value id = c.call({"CLIENT", "ID"});
    CHECK(id.kind == resp::value_kind::integer);
    CHECK(id.integer > 0);
    CHECK(call(c, {"CLIENT", "GETNAME"}) == "$-1\r\n");
    CHECK(call(c, {"client", "setname", "worker-1"}) == "+OK\r\n");
    CHECK(call(c, {"CLIENT", "GETNAME"}) == "$8\r\nworker-1\r\n");
    CHECK(call(c, {"CLIENT", "SETNAME", "a b"}) ==
          "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    CHECK(call(c, {"CLIENT", "SETNAME", ""}) == "+OK\r\n");
    CHECK(call(c, {"CLIENT", "GETNAME"}) == "$-1\r\n");
    CHECK(call(c, {"CLIENT"}) == "-ERR wrong number of arguments for 'client' command\r\n");
    CHECK(call(c, {"client", "list"}) == "-ERR unknown subcommand 'list'. Try CLIENT HELP.\r\n");
    CHECK(call(c, {"CLIENT", "ID", "x"}) == "-ERR wrong number of arguments for 'client|id' command\r\n");
  }

  SECTION("HELLO") {
    const std::string id = std::to_string(c.call({"CLIENT", "ID"}).integer);
    const std::string tail = "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    const std::string head = "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n";
    const std::string id_field = "$2\r\nid\r\n:" + id + "\r\n";
    CHECK(call(c, {"HELLO"}) == "*14\r\n" + head + ":2\r\n" + id_field + tail);
    CHECK(call(c, {"HELLO", "4"}) == "-NOPROTO unsupported protocol version\r\n");
    CHECK(call(c, {"HELLO", "x"}) == "-ERR Protocol version is not an integer or out of range\r\n");
    CHECK(call(c, {"HELLO", "3", "FOO"}) == "-ERR Syntax error in HELLO option 'FOO'\r\n");
    CHECK(call(c, {"HELLO", "3", "SETNAME", "n1"}) == "%7\r\n" + head + ":3\r\n" + id_field + tail);
    CHECK(call(c, {"CLIENT", "GETNAME"}) == "$2\r\nn1\r\n");
    CHECK(call(c, {"CLIENT", "SETNAME", ""}) == "+OK\r\n");
    CHECK(call(c, {"CLIENT", "GETNAME"}) == "_\r\n");  // RESP3 null
    CHECK(call(c, {"RESET"}) == "+RESET\r\n");
    CHECK(call(c, {"CLIENT", "GETNAME"}) == "$-1\r\n");  // back to RESP2
  }

  SECTION("AUTH without requirepass") {
    CHECK(call(c, {"AUTH", "x"}) ==
          "-ERR AUTH <password> called without any password configured for the default user. Are you sure your "
          "configuration is correct?\r\n");
    CHECK(call(c, {"AUTH", "someone", "x"}) == "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    CHECK(call(c, {"AUTH", "default", "anything"}) == "+OK\r\n");
    CHECK(call(c, {"AUTH", "a", "b", "c"}) == "-ERR syntax error\r\n");
    CHECK(call(c, {"AUTH"}) == "-ERR wrong number of arguments for 'auth' command\r\n");
  }

  SECTION("COMMAND") {
    CHECK(call(c, {"COMMAND", "COUNT"}) ==
          ":" + std::to_string(pubsub::detail::top_level_commands().size()) + "\r\n");
    CHECK(call(c, {"COMMAND", "INFO", "publish", "nope"}) ==
          "*2\r\n*10\r\n$7\r\npublish\r\n:3\r\n*4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n"
          "*2\r\n+@pubsub\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n$-1\r\n");
    CHECK(call(c, {"COMMAND", "DOCS", "ping"}) == "*0\r\n");
    CHECK(call(c, {"COMMAND", "LIST", "FILTERBY"}) == "-ERR syntax error\r\n");
    CHECK(call(c, {"COMMAND", "COUNT", "x"}) == "-ERR wrong number of arguments for 'command|count' command\r\n");
    CHECK(call(c, {"COMMAND", "nope"}) == "-ERR unknown subcommand 'nope'. Try COMMAND HELP.\r\n");
    const resp::value all = c.call({"COMMAND"});
    CHECK(all.elements.size() == pubsub::detail::top_level_commands().size());
    const resp::value list = c.call({"COMMAND", "LIST"});
    CHECK(list.elements.size() == pubsub::detail::top_level_commands().size() + pubsub::detail::resp_subcommands.size());
  }

  SECTION("PUBSUB argument errors") {
    CHECK(call(c, {"PUBSUB"}) == "-ERR wrong number of arguments for 'pubsub' command\r\n");
    CHECK(call(c, {"PUBSUB", "foo"}) == "-ERR unknown subcommand 'foo'. Try PUBSUB HELP.\r\n");
    CHECK(call(c, {"pubsub", "numpat", "x"}) == "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n");
    CHECK(call(c, {"pubsub", "channels", "a", "b"}) ==
          "-ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.\r\n");
  }

  SECTION("QUIT answers and closes") {
    c.send({"QUIT"});
    CHECK(c.read_until_closed() == "+OK\r\n");
  }
  CHECK(fe.server.stats().commands > 0);
}

TEST_CASE("resp_server: subscribed mode in RESP2", "[pubsub][resp_server]") {
  front_end fe;
  asio::io_context ctx;
  redis_client sub(ctx, fe.port());
  redis_client pub(ctx, fe.port());

  CHECK(call(sub, {"SUBSCRIBE"}) == "-ERR wrong number of arguments for 'subscribe' command\r\n");
  sub.send({"SUBSCRIBE", "a", "b", "a"});
  CHECK(next(sub) == "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
  CHECK(next(sub) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
  CHECK(next(sub) == "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n");
  CHECK(call(sub, {"PSUBSCRIBE", "a*"}) == "*3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:3\r\n");
  CHECK(call(sub, {"SSUBSCRIBE", "a"}) == "*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n");  // counted apart

  CHECK(call(sub, {"PUBLISH", "a", "x"}) ==
        "-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
        "this context\r\n");
  CHECK(call(sub, {"CLIENT", "ID"}) ==
        "-ERR Can't execute 'client|id': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in "
        "this context\r\n");
  CHECK(call(sub, {"PING"}) == "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  CHECK(call(sub, {"PING", "hi"}) == "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");

  CHECK(call(pub, {"PUBLISH", "a", "hello"}) == ":2\r\n");  // the channel and the pattern
  std::vector<std::string> got{next(sub), next(sub)};
  std::sort(got.begin(), got.end());
  CHECK(got[0] == "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n");
  CHECK(got[1] == "*4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$5\r\nhello\r\n");

  // Shard channels are a namespace of their own.
  CHECK(call(pub, {"SPUBLISH", "a", "sharded"}) == ":1\r\n");
  CHECK(next(sub) == "*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$7\r\nsharded\r\n");
  CHECK(call(pub, {"SPUBLISH", "b", "x"}) == ":0\r\n");

  SECTION("PUBSUB introspection") {
    CHECK(call(pub, {"PUBSUB", "NUMSUB", "a", "zz"}) == "*4\r\n$1\r\na\r\n:1\r\n$2\r\nzz\r\n:0\r\n");
    CHECK(call(pub, {"PUBSUB", "NUMPAT"}) == ":1\r\n");
    const resp::value channels = pub.call({"PUBSUB", "CHANNELS"});
    CHECK(channels.elements.size() == 2);
    CHECK(call(pub, {"PUBSUB", "CHANNELS", "b*"}) == "*1\r\n$1\r\nb\r\n");
    CHECK(call(pub, {"PUBSUB", "SHARDCHANNELS"}) == "*1\r\n$1\r\na\r\n");
    CHECK(call(pub, {"PUBSUB", "SHARDNUMSUB", "a"}) == "*2\r\n$1\r\na\r\n:1\r\n");
    CHECK(call(pub, {"PUBSUB", "SHARDNUMSUB"}) == "*0\r\n");
  }

  SECTION("unsubscribing") {
    CHECK(call(sub, {"UNSUBSCRIBE", "q"}) == "*3\r\n$11\r\nunsubscribe\r\n$1\r\nq\r\n:3\r\n");
    sub.send({"UNSUBSCRIBE"});
    std::vector<std::string> left{next(sub), next(sub)};
    std::sort(left.begin(), left.end());
    CHECK(left[0].find("$1\r\na\r\n") != std::string::npos);
    CHECK(left[1].find("$1\r\nb\r\n") != std::string::npos);
    CHECK(call(sub, {"PUNSUBSCRIBE"}) == "*3\r\n$12\r\npunsubscribe\r\n$2\r\na*\r\n:0\r\n");
    CHECK(call(sub, {"SUNSUBSCRIBE"}) == "*3\r\n$12\r\nsunsubscribe\r\n$1\r\na\r\n:0\r\n");
    CHECK(call(sub, {"UNSUBSCRIBE"}) == "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    CHECK(call(sub, {"PING"}) == "+PONG\r\n");  // out of subscribed mode
    CHECK(call(pub, {"PUBLISH", "a", "x"}) == ":0\r\n");
    CHECK(call(pub, {"PUBSUB", "NUMPAT"}) == ":0\r\n");
    CHECK(call(pub, {"PUBSUB", "CHANNELS"}) == "*0\r\n");
    // The front end's topics are forgotten with their last subscriber (and the one the PUBLISH made, at the next
    // tick of the server's clock).
    CHECK(eventually([&] { return fe.broker.stats().topics == 0; }));
  }

  SECTION("RESET leaves subscribed mode silently") {
    CHECK(call(sub, {"RESET"}) == "+RESET\r\n");
    CHECK(call(sub, {"ECHO", "e"}) == "$1\r\ne\r\n");
    CHECK(call(pub, {"PUBLISH", "a", "x"}) == ":0\r\n");
  }
}

TEST_CASE("resp_server: RESP3 pushes after HELLO 3", "[pubsub][resp_server]") {
  front_end fe;
  asio::io_context ctx;
  redis_client sub(ctx, fe.port());
  redis_client pub(ctx, fe.port());
  CHECK(sub.call({"HELLO", "3"}).kind == resp::value_kind::map);
  CHECK(call(sub, {"SUBSCRIBE", "a"}) == ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
  CHECK(call(sub, {"PSUBSCRIBE", "a*"}) == ">3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:2\r\n");
  // RESP3 has no subscribed-mode restriction.
  CHECK(call(sub, {"PING"}) == "+PONG\r\n");
  CHECK(call(sub, {"ECHO", "e"}) == "$1\r\ne\r\n");
  CHECK(call(sub, {"PUBSUB", "NUMSUB", "a"}) == "*2\r\n$1\r\na\r\n:1\r\n");

  CHECK(call(pub, {"PUBLISH", "a", "x"}) == ":2\r\n");
  std::vector<std::string> got{next(sub), next(sub)};
  std::sort(got.begin(), got.end());
  CHECK(got[0] == ">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n");
  CHECK(got[1] == ">4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$1\r\na\r\n$1\r\nx\r\n");
  CHECK(call(sub, {"UNSUBSCRIBE", "zz"}) == ">3\r\n$11\r\nunsubscribe\r\n$2\r\nzz\r\n:2\r\n");
  CHECK(call(sub, {"PUNSUBSCRIBE"}) == ">3\r\n$12\r\npunsubscribe\r\n$2\r\na*\r\n:1\r\n");
  CHECK(call(sub, {"UNSUBSCRIBE"}) == ">3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n");
  CHECK(call(sub, {"SUNSUBSCRIBE"}) == ">3\r\n$12\r\nsunsubscribe\r\n_\r\n:0\r\n");
}

TEST_CASE("resp_server: requirepass", "[pubsub][resp_server]") {
  front_end fe({.requirepass = "sekret"});
  asio::io_context ctx;
  redis_client c(ctx, fe.port());
  const std::string noauth = "-NOAUTH Authentication required.\r\n";
  CHECK(call(c, {"PING"}) == noauth);
  CHECK(call(c, {"SUBSCRIBE", "a"}) == noauth);
  CHECK(call(c, {"CLIENT", "ID"}) == noauth);
  CHECK(call(c, {"FOO"}) == "-ERR unknown command 'FOO', with args beginning with: \r\n");  // looked up first
  CHECK(call(c, {"HELLO", "3"}) ==
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> "
        "option can be used to authenticate the client and select the RESP protocol version at the same time\r\n");
  const std::string wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
  CHECK(call(c, {"AUTH", "bad"}) == wrongpass);
  CHECK(call(c, {"AUTH", "someone", "sekret"}) == wrongpass);
  CHECK(call(c, {"HELLO", "3", "AUTH", "default", "bad"}) == wrongpass);
  CHECK(call(c, {"AUTH", "sekret"}) == "+OK\r\n");
  CHECK(call(c, {"PING"}) == "+PONG\r\n");
  CHECK(call(c, {"RESET"}) == "+RESET\r\n");
  CHECK(call(c, {"PING"}) == noauth);
  CHECK(c.call({"HELLO", "3", "AUTH", "default", "sekret"}).kind == resp::value_kind::map);
  CHECK(call(c, {"PING"}) == "+PONG\r\n");
  c.send({"QUIT"});  // allowed before AUTH too
  CHECK(c.read_until_closed() == "+OK\r\n");
}

TEST_CASE("resp_server: inline commands and protocol errors", "[pubsub][resp_server]") {
  front_end fe;
  asio::io_context ctx;

  SECTION("inline, as telnet and redis-cli send them") {
    redis_client c(ctx, fe.port());
    c.write("PING\r\necho \"a b\"\nsubscribe news\r\n");
    CHECK(next(c) == "+PONG\r\n");
    CHECK(next(c) == "$3\r\na b\r\n");
    CHECK(next(c) == "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
  }

  SECTION("a protocol error gets Redis's reply, then the connection closes") {
    redis_client c(ctx, fe.port());
    c.write("PING\r\n*1\r\n$x\r\n");
    CHECK(c.read_until_closed() == "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    CHECK(eventually([&] { return fe.server.stats().protocol_errors == 1; }));
  }

  SECTION("unbalanced quotes") {
    redis_client c(ctx, fe.port());
    c.write("echo \"abc\r\n");
    CHECK(c.read_until_closed() == "-ERR Protocol error: unbalanced quotes in request\r\n");
  }

  SECTION("a burst larger than the read buffer") {
    redis_client c(ctx, fe.port());
    std::string all;
    for (int i = 0; i < 20000; ++i) resp::encoder(all).command({"ECHO", "hello"});
    c.write(all);  // 520 KB in one write: many reads, each filling the buffer
    for (int i = 0; i < 20000; ++i) REQUIRE(next(c) == "$5\r\nhello\r\n");
  }

  SECTION("a command larger than a read, after smaller ones in the same reads") {
    // Reads go to the thread's scratch buffer (64 KiB) while no command is unfinished; an unfinished one moves to
    // the client's own buffer, which later reads extend. Payload bytes vary so that a misplaced piece shows.
    redis_client subscriber(ctx, fe.port());
    CHECK(call(subscriber, {"SUBSCRIBE", "big"}) == "*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n");
    redis_client c(ctx, fe.port());
    std::string payload(300 * 1024, ' ');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i * 7 % 26);
    std::string all;
    for (int i = 0; i < 1000; ++i) resp::encoder(all).command({"ECHO", "before"});
    resp::encoder(all).command({"PUBLISH", "big", payload});
    resp::encoder(all).command({"ECHO", "after"});
    c.write(all);
    for (int i = 0; i < 1000; ++i) REQUIRE(next(c) == "$6\r\nbefore\r\n");
    CHECK(next(c) == ":1\r\n");
    CHECK(next(c) == "$5\r\nafter\r\n");
    CHECK(next(subscriber) == "*3\r\n$7\r\nmessage\r\n$3\r\nbig\r\n$" + std::to_string(payload.size()) + "\r\n" + payload +
                                  "\r\n");
  }

  SECTION("pipelined commands split anywhere") {
    redis_client c(ctx, fe.port());
    std::string all;
    for (int i = 0; i < 100; ++i) resp::encoder(all).command({"ECHO", std::to_string(i)});
    for (std::size_t i = 0; i < all.size(); i += 7) c.write(std::string_view(all).substr(i, 7));
    for (int i = 0; i < 100; ++i) CHECK(c.read().text == std::to_string(i));
  }
}

TEST_CASE("resp_server: the same bytes as a real redis-server", "[pubsub][resp_server][redis]") {
  REQUIRE(test::have_program("redis-server"));  // installed by scripts/install-deps.sh
  test::redis_server redis;
  front_end fe;
  asio::io_context ctx;
  // Everything but what names the server (HELLO's version and client ids) and what Redis orders by hash.
  const std::vector<std::vector<std::string_view>> script = {
      {"PING"}, {"PING", "x"}, {"PING", "a", "b"}, {"ECHO", "e"}, {"ECHO"}, {"NOPE", "a", "b"}, {"publish", "c"},
      {"PUBLISH", "c", "m"}, {"AUTH", "x"}, {"AUTH", "u", "p"}, {"AUTH", "default", "p"}, {"AUTH", "a", "b", "c"},
      {"HELLO", "4"}, {"HELLO", "x"}, {"HELLO", "2", "FOO"}, {"HELLO", "2", "SETNAME", "a b"},
      {"CLIENT", "GETNAME"}, {"CLIENT", "SETNAME", "n"}, {"CLIENT", "GETNAME"}, {"CLIENT"}, {"CLIENT", "nope"},
      {"CLIENT", "ID", "x"}, {"COMMAND", "COUNT", "x"}, {"COMMAND", "nope"}, {"COMMAND", "DOCS", "nope"},
      {"COMMAND", "LIST", "x"},
      {"COMMAND", "INFO", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ssubscribe", "sunsubscribe",
       "publish", "spublish", "ping", "echo", "hello", "auth", "quit", "reset", "nope", "client|id",
       "client|getname", "client|setname", "pubsub|numpat", "pubsub|channels", "command|count"},
      {"PUBSUB"}, {"PUBSUB", "nope"}, {"PUBSUB", "NUMPAT", "x"}, {"PUBSUB", "CHANNELS", "a", "b"},
      {"PUBSUB", "NUMSUB", "a"}, {"PUBSUB", "NUMPAT"}, {"PUBSUB", "SHARDNUMSUB"},
      {"SUBSCRIBE", "a"}, {"PSUBSCRIBE", "p*"}, {"SSUBSCRIBE", "s"}, {"PING"}, {"PING", "x"}, {"ECHO", "e"},
      {"PUBLISH", "a", "b"}, {"UNSUBSCRIBE", "x"}, {"UNSUBSCRIBE", "a"}, {"PUNSUBSCRIBE"}, {"SUNSUBSCRIBE", "s"},
      {"SUNSUBSCRIBE"}, {"PING"}, {"RESET"}, {"HELLO", "3", "FOO"}, {"SUBSCRIBE", "a"}, {"PING"},
      {"UNSUBSCRIBE"}, {"UNSUBSCRIBE"}, {"CLIENT", "GETNAME"}, {"COMMAND", "INFO", "spublish", "nope"}, {"RESET"},
      {"QUIT", "x"},
  };
  redis_client ours(ctx, fe.port());
  redis_client theirs(ctx, redis.port());
  for (const auto& command : script) {
    std::string text;
    for (auto a : command) text += std::string(a) + " ";
    INFO(text);
    std::string out;
    resp::encoder(out).command(command);
    if (command[0] == "HELLO" && command.size() > 1 && command[1] == "3") {
      ours.write(out);  // a RESP3 map naming the server: not compared
      theirs.write(out);
      ours.read();
      theirs.read();
      continue;
    }
    ours.write(out);
    theirs.write(out);
    CHECK(next(ours) == next(theirs));
  }
}

TEST_CASE("resp_server: in-process publishers and subscribers share the topics", "[pubsub][resp_server]") {
  front_end fe;
  asio::io_context ctx;
  redis_client sub(ctx, fe.port());
  redis_client pub(ctx, fe.port());
  CHECK(call(sub, {"SUBSCRIBE", "news"}) == "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");

  fe.broker.publish("news", {.payload = shared_bytes::copy("from inside")});
  CHECK(next(sub) == "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$11\r\nfrom inside\r\n");

  std::atomic<int> inside{0};
  auto local = fe.broker.subscribe("news", {.on_event = [&](std::error_code, const pubsub::event& e) {
    if (e.is_message() && e.message().data() == "from outside") ++inside;
  }});
  CHECK(call(pub, {"PUBLISH", "news", "from outside"}) == ":2\r\n");  // the RESP client and the local one
  CHECK(next(sub) == "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$12\r\nfrom outside\r\n");
  CHECK(eventually([&] { return inside == 1; }));

  std::atomic<int> sharded{0};
  auto shard_local = fe.server.shard_channels().subscribe(
      "s", {.on_event = [&](std::error_code, const pubsub::event& e) { sharded += e.is_message(); }});
  CHECK(call(pub, {"SPUBLISH", "s", "x"}) == ":1\r\n");
  CHECK(eventually([&] { return sharded == 1; }));
  local.unsubscribe();
  shard_local.unsubscribe();
}

TEST_CASE("resp_server: a client that does not read is disconnected at its output limit", "[pubsub][resp_server]") {
  metrics_registry registry;  // outlives the server, whose series it holds
  front_end fe({.output_limits = {.hard = 256 * 1024, .soft = 128 * 1024, .soft_seconds = 60s}}, 2);
  fe.server.export_metrics(registry, "broker");
  asio::io_context ctx;

  // The slow client: a tiny receive buffer, and it never reads after subscribing.
  asio::ip::tcp::socket slow(ctx);
  slow.open(asio::ip::tcp::v4());
  slow.set_option(asio::socket_base::receive_buffer_size(4096));
  slow.connect({asio::ip::address_v4::loopback(), fe.port()});
  const std::string subscribe_slow = "*2\r\n$9\r\nSUBSCRIBE\r\n$8\r\nfirehose\r\n";
  asio::write(slow, asio::buffer(subscribe_slow));

  redis_client fast(ctx, fe.port());
  CHECK(call(fast, {"SUBSCRIBE", "firehose"}) == "*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n");
  CHECK(eventually([&] { return fe.server.stats().clients == 2; }));
  redis_client pub(ctx, fe.port());
  CHECK(eventually([&] {
    return pub.call({"PUBSUB", "NUMSUB", "firehose"}).elements.at(1).integer == 2;
  }));

  // Publish 16 KiB messages until the slow client is cut (bounded: 2,000 messages, 32 MiB); the fast one reads
  // every message, in order.
  const std::string payload(16 * 1024, 'x');
  int published = 0;
  for (; published < 2000 && fe.server.stats().output_limit_disconnects == 0; ++published) {
    const std::string n = std::to_string(published);
    pub.call({"PUBLISH", "firehose", n + payload});
    CHECK(fast.read().elements.at(2).text == n + payload);
  }
  CHECK(fe.server.stats().output_limit_disconnects == 1);
  CHECK(eventually([&] { return fe.server.stats().clients == 2; }));  // the fast client and the publisher

  // The others go on.
  for (int i = 0; i < 10; ++i) {
    CHECK(pub.call({"PUBLISH", "firehose", "after"}).integer == 1);
    CHECK(fast.read().elements.at(2).text == "after");
  }
  std::string exposed;
  registry.expose(exposed);
  CHECK(exposed.find("switchboard_resp_output_limit_disconnects_total{server=\"broker\"} 1") != std::string::npos);
  CHECK(exposed.find("switchboard_resp_clients{server=\"broker\"} 2") != std::string::npos);
}

TEST_CASE("resp_server: the soft output limit", "[pubsub][resp_server]") {
  // Above `soft` for longer than soft_seconds (0 s here: at the next check).
  front_end fe({.output_limits = {.hard = 64 * 1024 * 1024, .soft = 64 * 1024, .soft_seconds = 0s}});
  asio::io_context ctx;
  asio::ip::tcp::socket slow(ctx);
  slow.open(asio::ip::tcp::v4());
  slow.set_option(asio::socket_base::receive_buffer_size(4096));
  slow.connect({asio::ip::address_v4::loopback(), fe.port()});
  const std::string subscribe_slow = "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nt\r\n";
  asio::write(slow, asio::buffer(subscribe_slow));
  CHECK(eventually([&] { return fe.server.stats().clients == 1 && fe.broker.stats().subscriptions == 1; }));
  const std::string payload(16 * 1024, 'x');
  for (int i = 0; i < 2000 && fe.server.stats().output_limit_disconnects == 0; ++i) {
    fe.broker.publish("t", {.payload = shared_bytes::copy(payload)});
    if (i % 64 == 63) eventually([&] { return fe.broker.stats("t") && fe.broker.stats().subscriptions <= 1; });
  }
  CHECK(eventually([&] { return fe.server.stats().output_limit_disconnects == 1; }));
}

// Output above `soft` that the socket takes at once (no asynchronous write needed) leaves the client below `soft`
// again: the soft limit's clock stops there, as when an asynchronous write ends, and a client that read everything
// is not closed `soft_seconds` later (Redis resets the soft limit's timer whenever the output is below it).
TEST_CASE("resp_server: output written at once stops the soft output limit's clock", "[pubsub][resp_server]") {
  front_end fe({.output_limits = {.hard = 64 * 1024 * 1024, .soft = 4096, .soft_seconds = 1s}});
  asio::io_context ctx;
  redis_client sub(ctx, fe.port());
  sub.send({"SUBSCRIBE", "t"});
  CHECK(sub.read().elements.at(0).text == "subscribe");
  CHECK(eventually([&] { return fe.broker.stats().subscriptions == 1; }));
  fe.broker.publish("t", {.payload = shared_bytes::copy(std::string(8 * 1024, 'x'))});
  CHECK(sub.read().elements.at(2).text.size() == 8 * 1024);

  // Two of the shard's checks (the server has one thread) after the message was delivered: the first ran wholly
  // after it was queued, and the second at least a second after the first, so past soft_seconds. A soft limit's
  // clock left running would have closed the client there.
  const std::uint64_t checks = fe.server.stats().output_limit_checks;
  REQUIRE(eventually([&] { return fe.server.stats().output_limit_checks >= checks + 2; }));
  resp::value pong;
  REQUIRE_NOTHROW(pong = sub.call({"PING"}));
  CHECK(pong.elements.at(0).text == "pong");
  CHECK(fe.server.stats().output_limit_disconnects == 0);
}

TEST_CASE("resp_server: max clients", "[pubsub][resp_server]") {
  front_end fe({.max_clients = 1});
  asio::io_context ctx;
  redis_client first(ctx, fe.port());
  CHECK(call(first, {"PING"}) == "+PONG\r\n");
  redis_client second(ctx, fe.port());
  CHECK(second.read_until_closed() == "-ERR max number of clients reached\r\n");
  CHECK(fe.server.stats().rejected == 1);
}

TEST_CASE("resp_server: max clients per address", "[pubsub][resp_server]") {
  front_end fe({.max_clients_per_address = 2});
  asio::io_context ctx;
  auto first = std::make_unique<redis_client>(ctx, fe.port());
  redis_client second(ctx, fe.port());
  CHECK(call(*first, {"PING"}) == "+PONG\r\n");
  CHECK(call(second, {"PING"}) == "+PONG\r\n");
  redis_client third(ctx, fe.port());
  CHECK(third.read_until_closed() == "-ERR max number of clients per address reached\r\n");
  CHECK(fe.server.stats().rejected_per_address == 1);
  CHECK(fe.server.stats().rejected == 0);

  // Another address is not limited by this one's clients.
  redis_client elsewhere(ctx, fe.port(), 10s, "127.0.0.2");
  CHECK(call(elsewhere, {"PING"}) == "+PONG\r\n");

  // A client that leaves makes room for another from its address.
  first.reset();
  CHECK(eventually([&] { return fe.server.stats().clients == 2; }));
  redis_client again(ctx, fe.port());
  CHECK(call(again, {"PING"}) == "+PONG\r\n");
  CHECK(fe.server.stats().rejected_per_address == 1);
}

TEST_CASE("resp_server: a command past max_query_buffer closes its client", "[pubsub][resp_server]") {
  front_end fe({.max_query_buffer = 1024});
  asio::io_context ctx;
  redis_client c(ctx, fe.port());
  // Under the limit: a payload that fills most of it, and many small commands at once (each one finished).
  CHECK(call(c, {"PUBLISH", "ch", std::string(900, 'p')}) == ":0\r\n");
  std::string pings;
  for (int i = 0; i < 200; ++i) pings += "PING\r\n";  // 1,200 bytes in one write
  c.write(pings);
  for (int i = 0; i < 200; ++i) REQUIRE(next(c) == "+PONG\r\n");
  CHECK(fe.server.stats().query_buffer_disconnects == 0);

  // Each argument is within the parser's limits, but the command grows past 1 KiB: closed, without a reply.
  c.write("*4\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$600\r\n" + std::string(600, 'a') + "\r\n$600\r\n" +
          std::string(600, 'b'));  // 1,246 bytes, its last argument unfinished
  CHECK(c.read_until_closed() == "");
  CHECK(eventually([&] { return fe.server.stats().query_buffer_disconnects == 1; }));
  redis_client other(ctx, fe.port());
  CHECK(call(other, {"PING"}) == "+PONG\r\n");

  CHECK_THROWS_AS(front_end({.max_query_buffer = 0}), std::invalid_argument);
}

TEST_CASE("resp_server: max subscriptions per client", "[pubsub][resp_server]") {
  front_end fe({.max_subscriptions_per_client = 3});
  asio::io_context ctx;
  redis_client greedy(ctx, fe.port());
  redis_client other(ctx, fe.port());

  greedy.send({"SUBSCRIBE", "a", "b"});
  CHECK(next(greedy) == "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
  CHECK(next(greedy) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
  CHECK(call(greedy, {"SSUBSCRIBE", "s"}) == "*3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:1\r\n");
  // Channels, patterns and shard channels count together; a name the client has is not a new subscription.
  greedy.send({"PSUBSCRIBE", "p*", "q*"});
  CHECK(next(greedy) == "-ERR max number of subscriptions per client reached\r\n");
  CHECK(next(greedy) == "-ERR max number of subscriptions per client reached\r\n");
  CHECK(call(greedy, {"SUBSCRIBE", "a"}) == "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n");
  CHECK(fe.server.stats().subscriptions_refused == 2);
  CHECK(call(other, {"PUBSUB", "NUMPAT"}) == ":0\r\n");

  // The refused name is not half subscribed, the others still deliver, and another client is not limited by this one.
  CHECK(call(other, {"SUBSCRIBE", "x", "y", "z"}).starts_with("*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n"));
  CHECK(next(other) == "*3\r\n$9\r\nsubscribe\r\n$1\r\ny\r\n:2\r\n");
  CHECK(next(other) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nz\r\n:3\r\n");
  redis_client publisher(ctx, fe.port());
  CHECK(call(publisher, {"PUBLISH", "a", "m"}) == ":1\r\n");
  CHECK(next(greedy) == "*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nm\r\n");

  // Room made by leaving is room again.
  CHECK(call(greedy, {"UNSUBSCRIBE", "b"}) == "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n");
  CHECK(call(greedy, {"PSUBSCRIBE", "p*"}) == "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:2\r\n");
  CHECK(fe.server.stats().subscriptions_refused == 2);

  CHECK_THROWS_AS(front_end({.max_subscriptions_per_client = 0}), std::invalid_argument);
}

TEST_CASE("resp_server: drain closes clients after what was queued for them", "[pubsub][resp_server]") {
  front_end fe;
  asio::io_context ctx;
  redis_client sub(ctx, fe.port());
  redis_client idle(ctx, fe.port());
  CHECK(call(sub, {"SUBSCRIBE", "t"}) == "*3\r\n$9\r\nsubscribe\r\n$1\r\nt\r\n:1\r\n");
  CHECK(call(idle, {"PING"}) == "+PONG\r\n");
  fe.broker.publish("t", {.payload = shared_bytes::copy("last")});
  std::optional<drain_report> report;
  std::mutex m;
  CHECK(next(sub) == "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$4\r\nlast\r\n");
  fe.server.async_drain(std::chrono::steady_clock::now() + 10s, [&](drain_report r) {
    std::lock_guard lock(m);
    report = r;
  });
  CHECK(sub.read_until_closed().empty());
  CHECK(idle.read_until_closed().empty());
  CHECK(eventually([&] {
    std::lock_guard lock(m);
    return report.has_value();
  }));
  CHECK(report->drained == 2);
  CHECK(report->cut == 0);
  CHECK(fe.broker.stats().subscriptions == 0);
  // New connections are refused once the drain started.
  asio::ip::tcp::socket late(ctx);
  std::error_code ec;
  late.connect({asio::ip::address_v4::loopback(), fe.port()}, ec);
  CHECK(ec);
}

// As the HTTP server's (tests/http/server.cpp): a tick that fell due while the event loop was busy must not arm the
// clock again once the drain has finished, or the loop never runs out of work.
TEST_CASE("resp_server: a drain stops the clock even when a tick is already due", "[pubsub][resp_server]") {
  asio::io_context context(1);
  pubsub::broker broker(context.get_executor());
  pubsub::resp_server server(context.get_executor(), broker, front_end::port0({}));
  server.start();
  switchboard::test::poll(context);  // the clock is armed, for a tick a second later
  const auto outcome = switchboard::test::drain_while_a_tick_is_due(context, server, 1100ms);
  CHECK(outcome.drained);
  CHECK(outcome.loop_ran_out);
}

TEST_CASE("resp_server: resp::client in RESP3 receives pushes", "[pubsub][resp_server][resp]") {
  front_end fe({}, 2);
  asio::io_context ctx;
  resp::client sub(ctx.get_executor(), {.port = fe.port(), .client_name = "sub", .protocol = 3});
  resp::client pub(ctx.get_executor(), {.port = fe.port(), .protocol = 2});
  std::optional<std::error_code> c1, c2;
  sub.async_connect([&](std::error_code ec) { c1 = ec; });
  pub.async_connect([&](std::error_code ec) { c2 = ec; });
  REQUIRE(run_until(ctx, [&] { return c1 && c2; }));
  REQUIRE_FALSE(*c1);
  REQUIRE_FALSE(*c2);
  CHECK(sub.protocol() == 3);
  std::vector<resp::value> pushes;
  sub.set_push_handler([&](resp::value v) { pushes.push_back(std::move(v)); });
  bool subscribed = false;
  sub.async_exec(resp::command("SUBSCRIBE", "t"), [&](std::error_code, resp::value) { subscribed = true; });
  REQUIRE(run_until(ctx, [&] { return subscribed && pushes.size() == 1; }));
  CHECK(pushes[0].elements.at(0).text == "subscribe");
  std::optional<resp::value> count;
  pub.async_exec(resp::command("PUBLISH", "t", "hi"), [&](std::error_code, resp::value v) { count = v; });
  REQUIRE(run_until(ctx, [&] { return count && pushes.size() == 2; }));
  CHECK(count->integer == 1);
  CHECK(pushes[1].kind == resp::value_kind::push);
  CHECK(pushes[1].elements.at(0).text == "message");
  CHECK(pushes[1].elements.at(2).text == "hi");
}

TEST_CASE("resp_server: one broker subscription per thread and channel, one encoding per protocol",
          "[pubsub][resp_server]") {
  front_end fe;  // one thread
  asio::io_context ctx;
  std::vector<std::unique_ptr<redis_client>> subs;
  for (int i = 0; i < 4; ++i) {
    subs.push_back(std::make_unique<redis_client>(ctx, fe.port()));
    if (i % 2 == 1) subs.back()->call({"HELLO", "3"});
    subs.back()->call({"SUBSCRIBE", "t"});
  }
  CHECK(fe.broker.stats().subscriptions == 1);
  redis_client pub(ctx, fe.port());
  CHECK(call(pub, {"PUBLISH", "t", "p"}) == ":4\r\n");  // clients, as Redis counts
  for (int i = 0; i < 4; ++i) {
    CHECK(next(*subs[i]) == (i % 2 == 1 ? ">3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$1\r\np\r\n"
                                        : "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$1\r\np\r\n"));
  }
  subs[0]->call({"UNSUBSCRIBE", "t"});
  CHECK(call(pub, {"PUBLISH", "t", "q"}) == ":3\r\n");
  subs.clear();
  CHECK(eventually([&] { return fe.broker.stats().subscriptions == 0 && fe.broker.stats().topics == 0; }));
}

TEST_CASE("resp_server: message frames", "[pubsub][resp_server]") {
  asio::io_context ctx;
  pubsub::broker b(ctx);
  std::optional<pubsub::message> m;
  auto s = b.subscribe("t", {.on_event = [&](std::error_code, const pubsub::event& e) { m = e.message(); }});
  b.publish("t", {.payload = shared_bytes::copy("p")});
  test::poll(ctx);
  REQUIRE(m);
  using pubsub::detail::encode_delivery;
  using pubsub::detail::resp_delivery;
  CHECK(encode_delivery(resp::protocol::resp2, resp_delivery::message, "", *m).view() ==
        "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$1\r\np\r\n");
  CHECK(encode_delivery(resp::protocol::resp3, resp_delivery::smessage, "", *m).view() ==
        ">3\r\n$8\r\nsmessage\r\n$1\r\nt\r\n$1\r\np\r\n");
  CHECK(encode_delivery(resp::protocol::resp2, resp_delivery::pmessage, "t*", *m).view() ==
        "*4\r\n$8\r\npmessage\r\n$2\r\nt*\r\n$1\r\nt\r\n$1\r\np\r\n");
  // A large payload is encoded into its own string rather than the thread's scratch: the same bytes.
  const std::string big(5000, 'b');
  b.publish("t", {.payload = shared_bytes::copy(big)});
  test::poll(ctx);
  CHECK(encode_delivery(resp::protocol::resp2, resp_delivery::message, "", *m).view() ==
        "*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$5000\r\n" + big + "\r\n");
}

TEST_CASE("resp_server: command lookup", "[pubsub][resp_server]") {
  using pubsub::detail::lookup_command;
  const auto find = [](std::initializer_list<std::string_view> args) {
    return lookup_command(std::span<const std::string_view>(args.begin(), args.size()));
  };
  CHECK(find({"pUbLiSh", "a", "b"}).spec->id == pubsub::detail::resp_command_id::publish);
  CHECK(find({"client", "SETNAME", "x"}).spec->name == "client|setname");
  CHECK(find({"client", "SETNAME"}).error == "ERR wrong number of arguments for 'client|setname' command");
  // Redis lists arguments while under 128 bytes, each cut to what is left.
  const std::string long_arg(200, 'a');
  CHECK(find({"x", long_arg, "b"}).error ==
        "ERR unknown command 'x', with args beginning with: '" + std::string(128, 'a') + "' ");
  for (const auto& s : pubsub::detail::resp_subcommands) {
    CHECK(pubsub::detail::find_spec(s.name) == &s);
  }
  // The lookup asks has_subcommands before it searches the subcommand table: the two must agree.
  for (const auto& s : pubsub::detail::resp_commands) {
    INFO(s.name);
    CHECK(pubsub::detail::has_subcommands(s.id) == !pubsub::detail::subcommands_of(s.name).empty());
  }
}

// --- Commands written in pieces that end anywhere ---
//
// A read may end anywhere in a command: inside `*<count>` or `$<length>`, between a CR and its LF, inside a payload,
// inside an inline line. The connection runs the finished commands of a read from the thread's scratch buffer and
// keeps an unfinished one's bytes in its own (keep_unparsed), reads again at once when a read filled its room
// (maybe_more_), and stops running commands while many reply bytes wait. A randomized test of the HTTP server found
// a read that ended inside a syntactic unit making its connection spin; these tests look for that class of bug here:
// every reply must arrive whole, once and in order, however the bytes were split, and without more bytes from the
// client than the commands it waits on.

namespace {

/// One command of a script: the bytes sent, the exact reply (empty for what Redis skips without a reply: an empty
/// inline line, `*0`, `*-1`), and what it was, for failure messages.
struct scripted_command {
  std::string request;
  std::string reply;
  std::string what;
};

/// Sends all of `bytes` with send(2), which honours SO_SNDTIMEO (Asio's blocking write polls without a timeout,
/// so a server that stops reading would hang the test). False if the socket failed or the timeout passed.
bool send_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void set_send_timeout(int fd, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/// Random commands, each encoded at random as RESP multibulk or as an inline line, with the exact reply Redis 7
/// gives a RESP2 client that is not subscribed. The model keeps the one state these replies depend on: the name.
class command_script : random_source {
 public:
  /// `command_reply`: the server's reply to COMMAND (its content is tested above; here it is a reply of 4 KiB to
  /// a command of 17 bytes, so that one read's commands can queue more reply bytes than the server lets wait).
  command_script(unsigned seed, std::string command_reply)
      : random_source(seed), command_reply_(std::move(command_reply)) {}

  /// Appends the next step to `out`: one command or, now and then, a burst of COMMANDs. True when the client then
  /// waits for every reply so far before it sends more, as clients do between batches: a server that leaves
  /// commands it has received unrun until more bytes come stalls there.
  bool next(std::vector<scripted_command>& out) {
    enum kind { ping, ping_arg, echo, echo_big, publish, setname, getname, unknown, skipped, command, count, burst };
    // Weights of the kinds above, in their order.
    std::discrete_distribution<int> weights({10, 10, 30, 3, 10, 6, 6, 6, 5, 3, 2, 1});
    const int k = pick(weights);
    if (k == burst) {
      // Past the server's pause (256 KiB of replies waiting) when a read holds 64 of them or more.
      for (std::size_t n = 40 + below(80); n > 0; --n) out.push_back(encode({cased("COMMAND")}, command_reply_));
      return coin(0.5);
    }
    out.push_back(one(k));
    return coin(1.0 / 8);
  }

  /// A piece size for writing the stream: often tiny, so that reads end inside every part of a command.
  std::size_t piece_size() {
    const std::size_t r = below(4);
    return 1 + below(r == 0 ? 16 : r == 1 ? 512 : 8192);
  }

 private:
  scripted_command one(int k) {
    switch (k) {
      case 0: return encode({cased("PING")}, "+PONG\r\n");
      case 1: {
        const std::string arg = coin(0.5) ? token() : payload(below(200));
        return encode({cased("PING"), arg}, bulk_reply(arg));
      }
      case 2: {
        const std::string arg = payload(below(3001));
        return encode({cased("ECHO"), arg}, bulk_reply(arg));
      }
      case 3: {
        const std::string arg = payload(20'000 + below(80'001));  // larger than a read, and than the scratch buffer
        return encode({cased("ECHO"), arg}, bulk_reply(arg));
      }
      case 4: return encode({cased("PUBLISH"), "nobody-" + token(), payload(below(2000))}, ":0\r\n");
      case 5: {
        std::string name = coin(0.2) ? std::string() : token();
        if (coin(0.1)) {  // a space: refused, the name stays
          name += " x";
          return encode({cased("CLIENT"), cased("SETNAME"), name},
                        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
        }
        name_ = name;
        return encode({cased("CLIENT"), cased("SETNAME"), name}, "+OK\r\n");
      }
      case 6: return encode({cased("CLIENT"), cased("GETNAME")}, name_.empty() ? "$-1\r\n" : bulk_reply(name_));
      case 7: {
        // Arguments short enough that Redis lists them all (it stops at 128 bytes).
        std::vector<std::string> args{"NOSUCH" + token()};
        std::string listed;
        for (std::size_t i = below(4); i > 0; --i) {
          args.push_back(token());
          listed += "'" + args.back() + "' ";
        }
        return encode(args, "-ERR unknown command '" + args[0] + "', with args beginning with: " + listed + "\r\n");
      }
      case 8: {
        static constexpr std::string_view skips[] = {"\r\n", "\n", "   \t \r\n", "*0\r\n", "*-1\r\n"};
        const std::string_view s = skips[below(std::size(skips))];
        return {std::string(s), "", "skipped " + printable(s)};
      }
      case 9: return encode({cased("COMMAND")}, command_reply_);
      default:
        return encode({cased("COMMAND"), cased("COUNT")},
                      ":" + std::to_string(pubsub::detail::top_level_commands().size()) + "\r\n");
    }
  }

  scripted_command encode(const std::vector<std::string>& args, std::string reply) {
    std::string what = args[0];
    for (std::size_t i = 1; i < args.size(); ++i) what += " <" + std::to_string(args[i].size()) + " bytes>";
    // Inline when the line stays short (inline lines are for people; the limit is 64 KiB).
    std::size_t size = 0;
    for (const auto& a : args) size += a.size();
    if (size < 2000 && coin(0.3)) return {inline_line(args), std::move(reply), "inline " + what};
    const std::vector<std::string_view> views(args.begin(), args.end());
    return {multibulk(views), std::move(reply), "multibulk " + what};
  }

  std::string command_reply_;
  std::string name_;  // the client's name, as CLIENT SETNAME left it
};

}  // namespace

TEST_CASE("resp_server: a random mix of pipelined commands, written in random pieces, is answered in order",
          "[pubsub][resp_server]") {
  for (unsigned seed = 1; seed <= 6; ++seed) {
    INFO("seed " << seed);
    front_end fe;
    asio::io_context ctx;
    redis_client probe(ctx, fe.port());
    command_script script(seed, call(probe, {"COMMAND"}));

    // The script, and the points where the client waits for every reply so far before it sends more: after the
    // first `batches[i]` commands.
    std::vector<scripted_command> commands;
    std::vector<std::size_t> batches;
    while (commands.size() < 200) {
      if (script.next(commands)) batches.push_back(commands.size());
    }
    // Then subscribed mode, to see a message pushed after the script.
    const std::string channel = "news-" + std::to_string(seed);
    const std::vector<std::string_view> subscribe{"SUBSCRIBE", channel};
    commands.push_back({multibulk(subscribe), "*3\r\n$9\r\nsubscribe\r\n" + bulk_reply(channel) + ":1\r\n", "SUBSCRIBE"});
    batches.push_back(commands.size());
    std::string expected;
    for (const auto& command : commands) expected += command.reply;

    // The replies are read on a thread of their own while the stream is written, so that a server that stops reading
    // while its replies wait (as it should) slows the writer instead of deadlocking the test. Every wait is bounded:
    // reads and writes by the socket's timeouts, the writer's wait for replies by a deadline; a side that gives up
    // shuts the socket down, which ends the other's wait at once.
    test::raw_client c(fe.port(), 10s);
    c.socket().set_option(asio::ip::tcp::no_delay(true));  // small pieces leave as small segments
    const int fd = c.socket().native_handle();
    set_send_timeout(fd, 10s);
    std::mutex m;
    std::condition_variable arrived;
    std::string got;
    bool reader_done = false;
    std::jthread reader([&] {
      for (;;) {
        std::string piece = c.read_bytes(1);  // what one recv(2) returns
        std::lock_guard lock(m);
        got += piece;
        if (piece.empty() || got.size() >= expected.size()) {
          reader_done = true;
          arrived.notify_all();
          return;
        }
        arrived.notify_all();
      }
    });

    bool sent = true;
    bool answered = true;  // each batch's replies came before the deadline
    std::size_t at = 0;    // request bytes sent
    std::size_t first = 0;  // the first command of the batch
    for (const std::size_t end : batches) {
      std::string batch;
      std::size_t replies = 0;
      for (std::size_t i = 0; i < end; ++i) {
        if (i >= first) batch += commands[i].request;
        replies += commands[i].reply.size();
      }
      first = end;
      for (std::size_t done = 0; done < batch.size() && sent;) {
        const std::size_t piece = std::min(batch.size() - done, script.piece_size());
        sent = send_all(fd, std::string_view(batch).substr(done, piece));
        done += piece;
        at += sent ? piece : 0;
      }
      std::unique_lock lock(m);
      answered = sent && arrived.wait_for(lock, 10s, [&] { return got.size() >= replies || reader_done; }) &&
                 got.size() >= replies;
      if (!answered) break;
    }
    if (!answered) ::shutdown(fd, SHUT_RDWR);  // the reader stops now rather than at its timeout
    reader.join();

    CHECK(sent);
    INFO("sent " << at << " request bytes; received " << got.size() << " of " << expected.size() << " reply bytes");
    bool same = true;
    for (std::size_t i = 0, offset = 0; i < commands.size(); offset += commands[i].reply.size(), ++i) {
      if (got.compare(offset, commands[i].reply.size(), commands[i].reply) != 0) {
        INFO("command " << i << " of " << commands.size() << ": " << commands[i].what);
        INFO("expected: " << printable(commands[i].reply));
        INFO("got:      " << printable(std::string_view(got).substr(offset, commands[i].reply.size() + 16)));
        FAIL_CHECK("the reply differs or is missing");
        same = false;
        break;
      }
    }
    CHECK(got.size() == expected.size());
    if (!same || got.size() != expected.size()) break;  // one failing seed says enough, and each costs a timeout

    redis_client publisher(ctx, fe.port());
    CHECK(call(publisher, {"PUBLISH", channel, "after the script"}) == ":1\r\n");
    const std::string message = "*3\r\n$7\r\nmessage\r\n" + bulk_reply(channel) + bulk_reply("after the script");
    CHECK(c.read_bytes(message.size()) == message);
  }
}

TEST_CASE("resp_server: commands sent one byte per write are answered whole", "[pubsub][resp_server]") {
  front_end fe;
  test::raw_client c(fe.port(), 10s);
  // Without Nagle's delay each byte leaves as its own segment, so the server's reads end after (nearly) every byte.
  c.socket().set_option(asio::ip::tcp::no_delay(true));
  const int fd = c.socket().native_handle();
  set_send_timeout(fd, 10s);
  std::string request, reply;

  SECTION("multibulk, the payload holding CRLF, NUL and RESP markers") {
    const std::string payload("a\r\n$3\r\n\0*1\r\nb\r", 15);
    const std::vector<std::string_view> echo{"ECHO", payload};
    const std::vector<std::string_view> ping{"PING"};
    request = multibulk(echo) + multibulk(ping);
    reply = bulk_reply(payload) + "+PONG\r\n";
  }
  SECTION("inline, with quotes, escapes and an empty line") {
    request = "PING\r\nECHO \"a\\r\\nb\\x00 c\"\r\n\r\necho 'x y'\nping hello\n";
    reply = "+PONG\r\n" + bulk_reply(std::string("a\r\nb\0 c", 7)) + bulk_reply("x y") + bulk_reply("hello");
  }

  bool sent = true;
  for (std::size_t i = 0; i < request.size() && sent; ++i) sent = send_all(fd, std::string_view(request).substr(i, 1));
  CHECK(sent);
  CHECK(printable(c.read_bytes(reply.size())) == printable(reply));
}

TEST_CASE("resp_server: commands held back while replies wait run without more bytes from the client",
          "[pubsub][resp_server]") {
  // One read of COMMANDs (17 bytes each) queues their replies (4,141 bytes each) until more than 256 KiB wait,
  // after the 64th; the server then runs no more commands until those replies are sent. The client has sent its
  // whole pipeline and only reads: the commands held back must run all the same, and they are finished commands,
  // not an unfinished one that grew past max_query_buffer.
  std::size_t count = 100;
  pubsub::resp_server_options options;
  SECTION("default limits") {}
  SECTION("more bytes held back than max_query_buffer") {
    count = 200;  // 136 held back: 2,312 bytes
    options.max_query_buffer = 1024;
  }
  front_end fe(options);
  asio::io_context ctx;
  redis_client probe(ctx, fe.port());
  const std::string one = call(probe, {"COMMAND"});
  std::string request;
  for (std::size_t i = 0; i < count; ++i) request += "*1\r\n$7\r\nCOMMAND\r\n";
  test::raw_client c(fe.port(), 5s);
  c.send(request);  // one write, read by the server in one read
  CHECK(c.read_bytes(count * one.size()).size() == count * one.size());
  CHECK(fe.server.stats().query_buffer_disconnects == 0);
}

// Our RESP client against the front end, in RESP3, subscribed to three channels while three threads pipeline ECHO
// (of up to a megabyte of any bytes: replies pass the size past which the server holds commands back) and PING: the
// messages published meanwhile on another connection arrive as pushes between the replies, each once and in order,
// and every reply matches its command (tests/resp/client_mix.hpp).
//
// Across channels, the messages of a client's SUBSCRIBEs keep each channel's order only (each subscription is drained
// in turns: docs/pubsub.md); those of one PSUBSCRIBE come in the order published, as from Redis.
TEST_CASE("resp_server: our client's random mix, with pushes between the replies, is answered in order",
          "[pubsub][resp_server]") {
  front_end fe;
  using namespace switchboard::test::resp_mix;
  const unsigned seed = GENERATE(range(1u, 4u));
  SECTION("SUBSCRIBE") {
    check_mix_with_pushes(seed, {.port = fe.port()}, command_set::echo_and_ping, subscribe_by::channels,
                          message_order::per_channel);
  }
  SECTION("PSUBSCRIBE") {
    check_mix_with_pushes(seed, {.port = fe.port()}, command_set::echo_and_ping, subscribe_by::pattern,
                          message_order::as_published);
  }
}
