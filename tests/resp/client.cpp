// The RESP client against a real redis-server started by the test, and against a scripted server for the set-up
// cases Redis 7 cannot show (a server without HELLO, one that hangs up during the set-up).
#include <switchboard/resp/client.hpp>
#include <switchboard/resp/command_parser.hpp>

#include "resp/client_support.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <array>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using resp::command;
using switchboard::test::capture;
using switchboard::test::connect;
using switchboard::test::exec;
using switchboard::test::exec_result;
using switchboard::test::run_until;

TEST_CASE("resp client: commands, pipelining and both protocols", "[resp][client]") {
  REQUIRE(test::have_program("redis-server"));  // installed by scripts/install-deps.sh
  test::redis_server redis;
  asio::io_context ctx;

  for (int protocol : {3, 2}) {
    INFO("RESP" << protocol);
    resp::client c(ctx.get_executor(), {.port = redis.port(), .client_name = "switchboard-test", .protocol = protocol});
    REQUIRE_FALSE(connect(ctx, c));
    CHECK(c.protocol() == protocol);
    CHECK(exec(ctx, c, command("SET", "greeting", "hello")).text == "OK");
    CHECK(exec(ctx, c, command("GET", "greeting")).text == "hello");
    CHECK(exec(ctx, c, command("CLIENT", "GETNAME")).text == "switchboard-test");
    const resp::value err = exec(ctx, c, command("NO-SUCH-COMMAND"));
    CHECK(err.is_error());
    CHECK(err.text.rfind("ERR unknown command", 0) == 0);
    // RESP3 maps, RESP2 flat arrays: HGETALL shows which protocol is spoken.
    exec(ctx, c, command("HSET", "h", "f", "v"));
    CHECK(exec(ctx, c, command("HGETALL", "h")).kind == (protocol == 3 ? resp::value_kind::map : resp::value_kind::array));

    // 2,000 commands in flight at once: every reply matches its command, in order.
    std::vector<exec_result> results(2000);
    for (std::size_t i = 0; i < results.size(); ++i) {
      c.async_exec(command("ECHO", std::to_string(i)), capture(results[i]));
    }
    REQUIRE(run_until(ctx, [&] { return results.back().done; }));
    for (std::size_t i = 0; i < results.size(); ++i) {
      REQUIRE(results[i].done);
      CHECK(results[i].v.text == std::to_string(i));
    }
    c.close();
  }
}

TEST_CASE("resp client: coroutines", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client c(ctx.get_executor(), {.port = redis.port()});
  std::int64_t counter = 0;
  bool done = false;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    co_await c.async_connect(asio::use_awaitable);
    for (int i = 0; i < 10; ++i) co_await c.async_exec(command("INCR", "n"), asio::use_awaitable);
    counter = (co_await c.async_exec(command("GET", "n"), asio::use_awaitable)).text == "10" ? 10 : -1;
  }, [&](std::exception_ptr e) {
    CHECK_FALSE(e);
    done = true;
  });
  REQUIRE(run_until(ctx, [&] { return done; }));
  CHECK(counter == 10);
}

TEST_CASE("resp client: pub/sub pushes in RESP3 and RESP2", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  for (int protocol : {3, 2}) {
    INFO("RESP" << protocol);
    resp::client sub(ctx.get_executor(), {.port = redis.port(), .protocol = protocol});
    resp::client pub(ctx.get_executor(), {.port = redis.port()});
    REQUIRE_FALSE(connect(ctx, sub));
    REQUIRE_FALSE(connect(ctx, pub));
    std::vector<resp::value> pushes;
    sub.set_push_handler([&](resp::value v) { pushes.push_back(std::move(v)); });
    exec(ctx, sub, command("SUBSCRIBE", "news", "sport"));
    REQUIRE(run_until(ctx, [&] { return pushes.size() == 2; }));  // the two confirmations
    CHECK(pushes[0].elements[0].text == "subscribe");
    CHECK(pushes[1].elements[1].text == "sport");
    CHECK(exec(ctx, pub, command("PUBLISH", "news", "extra!")).integer == 1);
    REQUIRE(run_until(ctx, [&] { return pushes.size() == 3; }));
    CHECK(pushes[2].elements[0].text == "message");
    CHECK(pushes[2].elements[1].text == "news");
    CHECK(pushes[2].elements[2].text == "extra!");
    exec(ctx, sub, command("UNSUBSCRIBE"));
    REQUIRE(run_until(ctx, [&] { return pushes.size() == 5; }));
    // Out of subscribed mode, replies are replies again.
    CHECK(exec(ctx, sub, command("ECHO", "back")).text == "back");
  }
}

TEST_CASE("resp client: authentication", "[resp][client]") {
  test::redis_server redis({"--requirepass", "s3cret"});
  asio::io_context ctx;
  for (int protocol : {3, 2}) {
    INFO("RESP" << protocol);
    resp::client good(ctx.get_executor(), {.port = redis.port(), .password = "s3cret", .protocol = protocol});
    REQUIRE_FALSE(connect(ctx, good));
    CHECK(exec(ctx, good, command("PING")).text == "PONG");
    resp::client bad(ctx.get_executor(), {.port = redis.port(), .password = "wrong", .protocol = protocol});
    CHECK(connect(ctx, bad) == resp::error::handshake_failed);
    CHECK_FALSE(bad.connected());
    // Without a password the server refuses every command: the connect says so (in RESP2 too, which has no HELLO).
    resp::client none(ctx.get_executor(), {.port = redis.port(), .protocol = protocol});
    CHECK(connect(ctx, none) == resp::error::handshake_failed);
    CHECK_FALSE(none.connected());
  }
}

TEST_CASE("resp client: failures", "[resp][client]") {
  asio::io_context ctx;
  SECTION("commands before connecting") {
    resp::client c(ctx.get_executor(), {});
    exec_result r;
    c.async_exec(command("PING"), capture(r));
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == resp::error::not_connected);
  }
  SECTION("a server that accepts but never answers: connect timeout") {
    asio::ip::tcp::acceptor silent(ctx, {asio::ip::make_address("127.0.0.1"), 0});
    resp::client c(ctx.get_executor(), {.port = silent.local_endpoint().port(), .connect_timeout = 200ms});
    CHECK(connect(ctx, c) == switchboard::error::timeout);
  }
  SECTION("the server goes away: waiting commands fail, the disconnect handler is told") {
    auto redis = std::make_unique<test::redis_server>();
    resp::client c(ctx.get_executor(), {.port = redis->port()});
    REQUIRE_FALSE(connect(ctx, c));
    std::optional<std::error_code> lost;
    c.set_disconnect_handler([&](std::error_code ec) { lost = ec; });
    exec_result blocked;
    c.async_exec(command("BLPOP", "never", "0"), capture(blocked));  // waits forever on the server
    ctx.poll();
    redis.reset();  // stops redis-server
    REQUIRE(run_until(ctx, [&] { return blocked.done && lost.has_value(); }));
    CHECK(blocked.ec == resp::error::connection_lost);
    CHECK_FALSE(c.connected());
  }
  SECTION("too many commands waiting") {
    test::redis_server redis;
    resp::client c(ctx.get_executor(), {.port = redis.port(), .max_pending = 3});
    REQUIRE_FALSE(connect(ctx, c));
    std::vector<exec_result> r(4);
    for (auto& x : r) c.async_exec(command("PING"), capture(x));
    REQUIRE(run_until(ctx, [&] { return r[3].done; }));
    CHECK(r[3].ec == resp::error::too_many_pending);
    REQUIRE(run_until(ctx, [&] { return r[0].done && r[1].done && r[2].done; }));
    CHECK_FALSE(r[0].ec);
  }
}

// health_check_interval: PINGs keep a silent connection known to be alive without disturbing the replies, and a
// server that answers nothing (frozen with SIGSTOP: its connections stay open) ends the connection.
TEST_CASE("resp client: liveness of a connection that awaits no reply", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client probe(ctx.get_executor(), {.port = redis.port(), .health_check_interval = 0ms});
  REQUIRE_FALSE(connect(ctx, probe));
  const auto pings_served = [&] {
    const std::string info = exec(ctx, probe, command("INFO", "commandstats")).text;
    const auto at = info.find("cmdstat_ping:calls=");
    return at == std::string::npos ? 0 : std::stoi(info.substr(at + 19));
  };
  SECTION("a silent subscriber stays connected, its PINGs unseen") {
    for (int protocol : {3, 2}) {
      INFO("RESP" << protocol);
      resp::client sub(ctx.get_executor(), {.port = redis.port(), .protocol = protocol, .health_check_interval = 50ms});
      resp::client pub(ctx.get_executor(), {.port = redis.port()});
      REQUIRE_FALSE(connect(ctx, sub));
      REQUIRE_FALSE(connect(ctx, pub));
      std::optional<std::error_code> lost;
      sub.set_disconnect_handler([&](std::error_code ec) { lost = ec; });
      std::vector<resp::value> pushes;
      sub.set_push_handler([&](resp::value v) { pushes.push_back(std::move(v)); });
      exec(ctx, sub, command("SUBSCRIBE", "news"));
      REQUIRE(run_until(ctx, [&] { return pushes.size() == 1; }));
      // Silent but for the PINGs, which go neither to the push handler nor to a command.
      const int before = pings_served();
      REQUIRE(run_until(ctx, [&] { return pings_served() >= before + 3; }));
      CHECK(pushes.size() == 1);
      CHECK(exec(ctx, pub, command("PUBLISH", "news", "still here")).integer == 1);
      REQUIRE(run_until(ctx, [&] { return pushes.size() == 2; }));
      CHECK(pushes[1].elements[2].text == "still here");
      exec(ctx, sub, command("UNSUBSCRIBE", "news"));
      CHECK(exec(ctx, sub, command("ECHO", "back")).text == "back");
      CHECK_FALSE(lost);
      CHECK(sub.connected());
    }
  }
  SECTION("a frozen server ends the connection; a command's own wait is not cut") {
    resp::client idle(ctx.get_executor(), {.port = redis.port(), .health_check_interval = 50ms});
    resp::client blocked(ctx.get_executor(), {.port = redis.port(), .health_check_interval = 50ms});
    REQUIRE_FALSE(connect(ctx, idle));
    REQUIRE_FALSE(connect(ctx, blocked));
    std::optional<std::error_code> idle_lost, blocked_lost;
    idle.set_disconnect_handler([&](std::error_code ec) { idle_lost = ec; });
    blocked.set_disconnect_handler([&](std::error_code ec) { blocked_lost = ec; });
    exec_result pop;
    blocked.async_exec(command("BLPOP", "list", "0"), capture(pop));
    redis.pause();
    REQUIRE(run_until(ctx, [&] { return idle_lost.has_value(); }));
    CHECK(*idle_lost == switchboard::error::timeout);
    CHECK_FALSE(idle.connected());
    redis.resume();
    CHECK(exec(ctx, probe, command("RPUSH", "list", "x")).integer == 1);
    REQUIRE(run_until(ctx, [&] { return pop.done; }));
    REQUIRE_FALSE(pop.ec);
    CHECK(pop.v.elements.at(1).text == "x");
    CHECK_FALSE(blocked_lost);
  }
}

TEST_CASE("resp client: a refused subscription goes to the push handler", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  for (int protocol : {3, 2}) {
    INFO("RESP" << protocol);
    resp::client sub(ctx.get_executor(), {.port = redis.port(), .protocol = protocol});
    REQUIRE_FALSE(connect(ctx, sub));
    std::vector<resp::value> pushes;
    sub.set_push_handler([&](resp::value v) { pushes.push_back(std::move(v)); });
    // Redis answers a subscription it refuses with an error instead of confirmations (MOVED, in a cluster, for
    // SSUBSCRIBE at the wrong node); no command waits for it, so it is not taken for another command's reply.
    exec(ctx, sub, command("SUBSCRIBE"));
    REQUIRE(run_until(ctx, [&] { return pushes.size() == 1; }));
    CHECK(pushes[0].is_error());
    CHECK(pushes[0].text.find("wrong number of arguments") != std::string::npos);
    CHECK(sub.connected());
    exec(ctx, sub, command("SUBSCRIBE", "after"));
    REQUIRE(run_until(ctx, [&] { return pushes.size() == 2; }));
    CHECK(pushes[1].elements[0].text == "subscribe");
  }
}

// RESP2 subscribed mode ends with a confirmation whose count is 0; a subscription command already sent after the
// one that ended it starts it again, and its confirmation must still be taken for a push, not for a reply that no
// command waits for (which would end the connection as out of step). Both commands are sent before either
// confirmation is read.
TEST_CASE("resp client: RESP2 subscribing again right after the last unsubscription", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client sub(ctx.get_executor(), {.port = redis.port(), .protocol = 2});
  resp::client pub(ctx.get_executor(), {.port = redis.port()});
  REQUIRE_FALSE(connect(ctx, sub));
  REQUIRE_FALSE(connect(ctx, pub));
  std::vector<resp::value> pushes;
  std::optional<std::error_code> lost;
  sub.set_push_handler([&](resp::value v) { pushes.push_back(std::move(v)); });
  sub.set_disconnect_handler([&](std::error_code ec) { lost = ec; });
  exec(ctx, sub, command("SUBSCRIBE", "a"));
  REQUIRE(run_until(ctx, [&] { return pushes.size() == 1; }));

  exec_result unsubscribed, subscribed;
  sub.async_exec(command("UNSUBSCRIBE", "a"), capture(unsubscribed));
  sub.async_exec(command("SUBSCRIBE", "b"), capture(subscribed));
  // A subscription command completes once written (its confirmation is a push), so either may come first.
  REQUIRE(run_until(ctx, [&] { return (pushes.size() == 3 && unsubscribed.done && subscribed.done) || lost; }));
  CHECK_FALSE(lost);
  REQUIRE(pushes.size() == 3);
  CHECK((pushes[1].elements.at(0).text == "unsubscribe" && pushes[1].elements.at(2).integer == 0));
  CHECK((pushes[2].elements.at(0).text == "subscribe" && pushes[2].elements.at(1).text == "b"));
  CHECK((unsubscribed.done && !unsubscribed.ec && subscribed.done && !subscribed.ec));
  CHECK(exec(ctx, pub, command("PUBLISH", "b", "hi")).integer == 1);
  REQUIRE(run_until(ctx, [&] { return pushes.size() == 4; }));
  CHECK((pushes[3].elements.at(0).text == "message" && pushes[3].elements.at(2).text == "hi"));

  // The same with an UNSUBSCRIBE without names (one confirmation per channel, the last with count 0) and a pattern.
  exec(ctx, sub, command("SUBSCRIBE", "c"));
  REQUIRE(run_until(ctx, [&] { return pushes.size() == 5; }));
  sub.async_exec(command("UNSUBSCRIBE"), [](std::error_code, resp::value) {});
  sub.async_exec(command("PSUBSCRIBE", "d*"), [](std::error_code, resp::value) {});
  REQUIRE(run_until(ctx, [&] { return pushes.size() == 8 || lost; }));
  CHECK_FALSE(lost);
  REQUIRE(pushes.size() == 8);
  CHECK((pushes[6].elements.at(0).text == "unsubscribe" && pushes[6].elements.at(2).integer == 0));
  CHECK((pushes[7].elements.at(0).text == "psubscribe" && pushes[7].elements.at(1).text == "d*"));
  CHECK(exec(ctx, pub, command("PUBLISH", "d1", "there")).integer == 1);
  REQUIRE(run_until(ctx, [&] { return pushes.size() == 9; }));
  CHECK((pushes[8].elements.at(0).text == "pmessage" && pushes[8].elements.at(3).text == "there"));

  // Out of subscribed mode once nothing is subscribed and no confirmation is due: replies are replies again.
  exec(ctx, sub, command("PUNSUBSCRIBE"));
  REQUIRE(run_until(ctx, [&] { return pushes.size() == 10; }));
  CHECK(exec(ctx, sub, command("ECHO", "back")).text == "back");
  CHECK_FALSE(lost);
}

namespace {

// A server for the set-up tests, on the test's own io_context: answers each command it reads, in order, with what
// `answer` gives for its arguments, or closes the connection where that is nullopt.
class scripted_server {
 public:
  using answer_fn = std::function<std::optional<std::string>(std::span<const std::string_view> args)>;

  scripted_server(asio::io_context& ctx, answer_fn answer)
      : acceptor_(ctx, {asio::ip::make_address("127.0.0.1"), 0}), socket_(ctx), answer_(std::move(answer)) {
    acceptor_.async_accept(socket_, [this](std::error_code ec) {
      if (!ec) read();
    });
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  /// The names of the commands read, in order.
  const std::vector<std::string>& received() const { return received_; }
  /// The client closed the connection (or the server did).
  bool closed() const { return closed_; }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(buffer_), [this](std::error_code ec, std::size_t n) {
      if (ec) {
        closed_ = true;
        return;
      }
      in_.append(buffer_.data(), n);
      std::string replies;
      for (;;) {
        std::error_code parse_error;
        const std::size_t used = parser_.parse(in_, parse_error);
        REQUIRE_FALSE(parse_error);
        if (!parser_.has_command()) break;
        received_.emplace_back(parser_.args()[0]);
        const std::optional<std::string> reply = answer_(parser_.args());
        in_.erase(0, used);
        if (!reply) {
          socket_.close();
          closed_ = true;
          return;
        }
        replies += *reply;
      }
      if (!replies.empty()) asio::write(socket_, asio::buffer(replies));
      read();
    });
  }

  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::socket socket_;
  answer_fn answer_;
  std::array<char, 4096> buffer_{};
  std::string in_;
  resp::command_parser parser_;
  std::vector<std::string> received_;
  bool closed_ = false;
};

}  // namespace

// A server without HELLO (Redis before 6) makes the client fall back to RESP2 set-up commands after the refusal. A
// command issued while the set-up is in flight must go after them, or its reply would be taken for theirs.
TEST_CASE("resp client: a command issued during the set-up waits for it also when HELLO is refused",
          "[resp][client]") {
  const bool password = GENERATE(false, true);
  INFO("password " << password);
  asio::io_context ctx;
  resp::client* client = nullptr;
  test::exec_result user;
  scripted_server server(ctx, [&](std::span<const std::string_view> args) -> std::optional<std::string> {
    if (args[0] == "HELLO") {
      // The set-up is in flight: issue a command now, before its answer.
      client->async_exec(command("GET", "k"), capture(user));
      return "-ERR unknown command 'HELLO', with args beginning with: '3' \r\n";
    }
    if (args[0] == "AUTH") return "+OK\r\n";
    if (args[0] == "PING") return "+PONG\r\n";
    if (args[0] == "GET") return "$5\r\nvalue\r\n";
    return "-ERR unexpected\r\n";
  });
  resp::client c(ctx.get_executor(), {.port = server.port(), .password = password ? "pw" : ""});
  client = &c;
  REQUIRE_FALSE(connect(ctx, c));
  CHECK(c.protocol() == 2);
  REQUIRE(run_until(ctx, [&] { return user.done; }));
  CHECK_FALSE(user.ec);
  CHECK(user.v.text == "value");
  CHECK(server.received() == std::vector<std::string>{"HELLO", password ? "AUTH" : "PING", "GET"});
}

TEST_CASE("resp client: a connection lost during the set-up fails the connect and not the disconnect handler",
          "[resp][client]") {
  asio::io_context ctx;
  scripted_server server(ctx, [](std::span<const std::string_view>) -> std::optional<std::string> { return {}; });
  resp::client c(ctx.get_executor(), {.port = server.port()});
  std::optional<std::error_code> lost;
  c.set_disconnect_handler([&](std::error_code ec) { lost = ec; });
  CHECK(connect(ctx, c) == resp::error::connection_lost);
  test::poll(ctx);
  CHECK_FALSE(lost);  // it is for connections that were established
}

TEST_CASE("resp client: moving a client over a connected one closes the latter's connection", "[resp][client]") {
  asio::io_context ctx;
  scripted_server server(ctx, [](std::span<const std::string_view>) -> std::optional<std::string> {
    return "+OK\r\n";  // HELLO accepted
  });
  resp::client c(ctx.get_executor(), {.port = server.port()});
  REQUIRE_FALSE(connect(ctx, c));
  c = resp::client(ctx.get_executor(), {});
  REQUIRE(run_until(ctx, [&] { return server.closed(); }));
  CHECK_FALSE(c.connected());
}

TEST_CASE("resp client: a command without arguments is refused and the next reply stays in step", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client c(ctx.get_executor(), {.port = redis.port()});
  REQUIRE_FALSE(connect(ctx, c));
  exec_result empty;
  c.async_exec({}, capture(empty));
  REQUIRE(run_until(ctx, [&] { return empty.done; }));
  CHECK(empty.ec == asio::error::invalid_argument);
  CHECK(exec(ctx, c, command("ECHO", "next")).text == "next");
}

TEST_CASE("resp client: a push handler may replace itself", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client c(ctx.get_executor(), {.port = redis.port()});
  REQUIRE_FALSE(connect(ctx, c));
  int first = 0, later = 0;
  const std::string label(100, 'x');  // a capture the first handler reads after replacing itself
  std::size_t label_size = 0;
  c.set_push_handler([&, label](resp::value) {
    c.set_push_handler([&](resp::value) { ++later; });  // one-shot: the next pushes go elsewhere
    label_size = label.size();
    ++first;
  });
  exec(ctx, c, command("SUBSCRIBE", "a", "b"));
  REQUIRE(run_until(ctx, [&] { return first + later == 2; }));
  CHECK(first == 1);
  CHECK(later == 1);
  CHECK(label_size == 100);
}

// The client follows the protocol, the subscriptions and the order of replies itself: the commands that would change
// them behind its back are refused before anything is sent, and the connection goes on.
TEST_CASE("resp client: commands that would put it out of step are refused and never sent", "[resp][client]") {
  asio::io_context ctx;
  scripted_server server(ctx, [](std::span<const std::string_view> args) -> std::optional<std::string> {
    if (args[0] == "PING") return "+PONG\r\n";
    return "+OK\r\n";  // HELLO of the set-up, CLIENT GETNAME, and a refused command should it arrive
  });
  resp::client c(ctx.get_executor(), {.port = server.port()});
  REQUIRE_FALSE(connect(ctx, c));
  const std::vector<std::vector<std::string>> refused{
      command("HELLO", "2"), command("hello", "3"), command("ReSeT"), command("MONITOR"),
      command("client", "reply", "off"), command("CLIENT", "Reply", "SKIP"), command("CLIENT", "REPLY", "ON"),
      command("SYNC"), command("psync", "?", "-1"), command("REPLCONF", "GETACK", "*")};
  for (const auto& args : refused) {
    INFO(args[0] << (args.size() > 1 ? " " + args[1] : ""));
    exec_result r;
    asio::post(ctx, [&] {
      c.async_exec(args, capture(r));
      CHECK_FALSE(r.done);  // posted, never run inside async_exec
    });
    REQUIRE(run_until(ctx, [&] { return r.done; }));
    CHECK(r.ec == resp::error::command_refused);
  }
  // Another CLIENT subcommand goes out, and the replies stay in step.
  CHECK(exec(ctx, c, command("CLIENT", "GETNAME")).text == "OK");
  CHECK(exec(ctx, c, command("PING")).text == "PONG");
  CHECK(c.connected());
  CHECK(server.received() == std::vector<std::string>{"HELLO", "CLIENT", "PING"});  // the set-up's HELLO only
}

// Redis 7 sends a script's big number unchecked; the reply parser makes an invalid one an error reply for its own
// command, and the connection goes on.
TEST_CASE("resp client: a script's invalid big number fails its own command only", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client c(ctx.get_executor(), {.port = redis.port()});
  REQUIRE_FALSE(connect(ctx, c));
  REQUIRE(c.protocol() == 3);
  std::optional<std::error_code> lost;
  c.set_disconnect_handler([&](std::error_code ec) { lost = ec; });
  const resp::value bad = exec(ctx, c, command("EVAL", "redis.setresp(3); return {big_number='abc'}", "0"));
  CHECK(bad.is_error());
  CHECK(bad.text == "ERR invalid RESP big number: abc");
  const resp::value good = exec(ctx, c, command("EVAL", "redis.setresp(3); return {big_number='-12'}", "0"));
  CHECK(good.kind == resp::value_kind::big_number);
  CHECK(good.text == "-12");
  CHECK(exec(ctx, c, command("ECHO", "next")).text == "next");
  CHECK_FALSE(lost);
}

// A command issued right after `async_connect`, before even the TCP connection is made, is held with those issued
// during the set-up and sent once it has been answered; a SUBSCRIBE among them has its confirmation delivered.
TEST_CASE("resp client: commands issued before the connection is made are sent after the set-up", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  for (int protocol : {3, 2}) {
    INFO("RESP" << protocol);
    resp::client c(ctx.get_executor(), {.port = redis.port(), .protocol = protocol});
    std::vector<resp::value> pushes;
    c.set_push_handler([&](resp::value v) { pushes.push_back(std::move(v)); });
    std::optional<std::error_code> connected;
    exec_result echoed, subscribed;
    c.async_connect([&](std::error_code ec) { connected = ec; });
    c.async_exec(command("ECHO", "early"), capture(echoed));
    c.async_exec(command("SUBSCRIBE", "early"), capture(subscribed));
    REQUIRE(run_until(ctx, [&] { return connected && echoed.done && subscribed.done; }));
    CHECK_FALSE(*connected);
    CHECK_FALSE(echoed.ec);
    CHECK(echoed.v.text == "early");
    CHECK_FALSE(subscribed.ec);
    REQUIRE(run_until(ctx, [&] { return pushes.size() == 1; }));
    CHECK(pushes[0].elements.at(0).text == "subscribe");
    CHECK(pushes[0].elements.at(1).text == "early");
  }
}

// Inside MULTI, Redis queues a subscription command and answers +QUEUED, which no command would wait for (the
// client takes a subscription command's answers for pushes): the client refuses them there, and the transaction and
// the connection go on.
TEST_CASE("resp client: subscription commands inside MULTI are refused", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  for (int protocol : {3, 2}) {
    INFO("RESP" << protocol);
    resp::client c(ctx.get_executor(), {.port = redis.port(), .protocol = protocol});
    REQUIRE_FALSE(connect(ctx, c));
    std::optional<std::error_code> lost;
    c.set_disconnect_handler([&](std::error_code ec) { lost = ec; });
    for (const char* name : {"SUBSCRIBE", "psubscribe", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}) {
      INFO(name);
      exec_result multi, queued, refused, exec_reply;
      c.async_exec(command("MULTI"), capture(multi));
      c.async_exec(command(name, "ch"), capture(refused));
      c.async_exec(command("ECHO", "queued"), capture(queued));
      c.async_exec(command("EXEC"), capture(exec_reply));
      REQUIRE(run_until(ctx, [&] { return multi.done && refused.done && queued.done && exec_reply.done; }));
      CHECK_FALSE(lost);
      CHECK(refused.ec == resp::error::command_refused);
      CHECK(multi.v.text == "OK");
      CHECK(queued.v.text == "QUEUED");
      REQUIRE(exec_reply.v.elements.size() == 1);
      CHECK(exec_reply.v.elements[0].text == "queued");
    }
    // After EXEC, and after DISCARD, they are sent again.
    exec(ctx, c, command("MULTI"));
    exec(ctx, c, command("DISCARD"));
    std::vector<resp::value> pushes;
    c.set_push_handler([&](resp::value v) { pushes.push_back(std::move(v)); });
    exec(ctx, c, command("SUBSCRIBE", "after"));
    REQUIRE(run_until(ctx, [&] { return pushes.size() == 1; }));
    CHECK(pushes[0].elements.at(1).text == "after");
    CHECK_FALSE(lost);
  }
}

// The health check's PING would be queued inside MULTI, and its +QUEUED taken for an answer out of step: a
// transaction left open over several intervals keeps its connection, and EXEC answers its own commands only.
TEST_CASE("resp client: an open transaction is not health checked", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client probe(ctx.get_executor(), {.port = redis.port(), .health_check_interval = 0ms});
  resp::client idle(ctx.get_executor(), {.port = redis.port(), .health_check_interval = 20ms});
  resp::client c(ctx.get_executor(), {.port = redis.port(), .health_check_interval = 20ms});
  REQUIRE_FALSE(connect(ctx, probe));
  REQUIRE_FALSE(connect(ctx, idle));
  REQUIRE_FALSE(connect(ctx, c));
  std::optional<std::error_code> lost;
  c.set_disconnect_handler([&](std::error_code ec) { lost = ec; });
  const auto pings_served = [&] {
    const std::string info = exec(ctx, probe, command("INFO", "commandstats")).text;
    const auto at = info.find("cmdstat_ping:calls=");
    return at == std::string::npos ? 0 : std::stoi(info.substr(at + 19));
  };
  CHECK(exec(ctx, c, command("MULTI")).text == "OK");
  CHECK(exec(ctx, c, command("ECHO", "in")).text == "QUEUED");
  // The idle client, on the same interval, has sent three PINGs (one per two intervals): c was silent as long.
  const int before = pings_served();
  REQUIRE(run_until(ctx, [&] { return pings_served() >= before + 3 || lost; }));
  CHECK_FALSE(lost);
  const resp::value reply = exec(ctx, c, command("EXEC"));
  REQUIRE(reply.elements.size() == 1);
  CHECK(reply.elements[0].text == "in");
  CHECK_FALSE(lost);
}

namespace {

// A handler's capture that counts the copies made of it.
struct copy_counter {
  int* copies;
  copy_counter(int* c) : copies(c) {}
  copy_counter(const copy_counter& other) : copies(other.copies) { ++*copies; }
  copy_counter& operator=(const copy_counter&) = default;
};

}  // namespace

// The push handler is called where it is stored, not through a copy per push: a copy of a std::function whose
// captures exceed its small buffer is an allocation per message.
TEST_CASE("resp client: pushes are delivered without copying the push handler", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client c(ctx.get_executor(), {.port = redis.port()});
  REQUIRE_FALSE(connect(ctx, c));
  int copies = 0, pushes = 0;
  c.set_push_handler([&pushes, counter = copy_counter(&copies)](resp::value) { ++pushes; });
  test::poll(ctx);  // the handler is in place
  copies = 0;
  exec(ctx, c, command("SUBSCRIBE", "a", "b", "c"));
  REQUIRE(run_until(ctx, [&] { return pushes == 3; }));
  CHECK(copies == 0);
}

// The disconnect handler likewise: a copy per disconnect would allocate each time a connection is lost.
TEST_CASE("resp client: disconnects are reported without copying the disconnect handler", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  resp::client c(ctx.get_executor(), {.port = redis.port()});
  int copies = 0, disconnects = 0;
  c.set_disconnect_handler([&disconnects, counter = copy_counter(&copies)](std::error_code) { ++disconnects; });
  test::poll(ctx);  // the handler is in place
  copies = 0;
  for (int i = 1; i <= 3; ++i) {
    REQUIRE_FALSE(connect(ctx, c));
    exec(ctx, c, command("QUIT"));  // answered, then the server closes the connection
    REQUIRE(run_until(ctx, [&] { return disconnects == i; }));
  }
  CHECK(copies == 0);
}

TEST_CASE("resp client: a push handler may destroy the client", "[resp][client]") {
  test::redis_server redis;
  asio::io_context ctx;
  auto c = std::make_unique<resp::client>(ctx.get_executor(), resp::client_options{.port = redis.port()});
  REQUIRE_FALSE(connect(ctx, *c));
  const std::string label(100, 'x');  // a capture the handler reads after destroying the client
  std::size_t label_size = 0;
  int pushes = 0;
  c->set_push_handler([&, label](resp::value) {
    c.reset();
    label_size = label.size();
    ++pushes;
  });
  c->async_exec(command("SUBSCRIBE", "a", "b"), [](std::error_code, resp::value) {});
  REQUIRE(run_until(ctx, [&] { return c == nullptr; }));
  test::poll(ctx);
  CHECK(pushes == 1);  // the second confirmation is not delivered: the connection was closed
  CHECK(label_size == 100);
}
