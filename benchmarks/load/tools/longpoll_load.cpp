// longpoll_load: the long-polling load client of benchmarks/load/longpoll.sh.
//
// N pollers each keep one long-poll GET outstanding on a keep-alive connection to --subscribe-path; one
// publisher connection sends `POST --publish-path` requests whose body is the message. When a poll is
// answered, the poller records each message it carries (its latency from the stamp the payload carries) and at
// once polls again from where the answer left it. One publish at a time, as sse_load: the next POST goes out
// when every poller got the current message (or after --publish-timeout, and the missing deliveries count as
// lost). The options, the publisher, the schedule and the modes (--check: one poller, one publish, the message
// must arrive unchanged; --hold: open the pollers, each with its poll parked, for memory.sh) are
// tools/fanout_client.hpp's, shared with sse_load; this file opens the pollers and speaks the two protocols:
//
//   --protocol switchboard  (longpoll/endpoint.hpp, docs/long-polling.md) `GET PATH?cursor=N&timeout=S`
//       answers `{"messages":[{"seq":N,"data":"..."}...],"cursor":next}`, read with longpoll/batch.hpp's
//       decoder (exact: types, consecutive sequence numbers, base64), or, for the usual answer of one message
//       with nothing escaped, by matching its exact text (read_single_message); the next poll sends `cursor`. A poller
//       first asks `GET PATH?timeout=0`, which answers at once with the topic's cursor, and polls from there:
//       it can then miss nothing, whenever its poll reaches the server. A gap or a reset fails the poller.
//   --protocol nchan  (nchan_subscriber longpoll) `GET PATH` answers one message as the raw body; the next poll
//       sends the answer's Last-Modified and Etag back as If-Modified-Since and If-None-Match, which name the
//       message to continue after. The first poll (no such fields) waits for the next message published, so
//       before the first publish the client waits until Nchan's channel information (`GET --publish-path`,
//       Accept: text/json) counts every poller as a subscriber.
//
// Every answer is framed with http_load's own response parser (tools/response_parser.hpp): a 200 (or a 304,
// nothing new, polled again) on a kept-alive connection; anything else fails the poller.
//
// switchboard's endpoint parks at most `max_parked_per_client` (64) requests per client address by default, as
// a server facing the Internet should: so that the pollers stand for many clients rather than one, with a
// loopback --host they come from many loopback addresses (127.1.0.1, 127.1.0.2, ...), --per-address each.
//
// Usage: longpoll_load --port PORT [options]; --help lists them (usage_text() below).
// Exit status: 0 when the run completed with deliveries and no error (or the check passed, or every held poll
// stayed open), 1 otherwise (the reason on stderr), 2 for a usage error.
#include "fanout_client.hpp"
#include "response_parser.hpp"

#include <switchboard/longpoll/batch.hpp>

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address_v4.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace {

using asio::ip::tcp;
using load_tools::clock_type;

constexpr const char* tool = "longpoll_load";
constexpr const char* default_path = "/topics/bench/poll";

enum class protocol { switchboard, nchan };

/// longpoll_load's own options, beside the common ones.
struct poll_options {
  protocol wire = protocol::switchboard;
  unsigned poll_timeout_s = 60;
  unsigned per_address = 32;
};

std::string usage_text() {
  return std::string("usage: longpoll_load --port PORT [options]\n") +
         load_tools::fanout_cli::common_usage(default_path, "poller") +
         "  --protocol NAME         switchboard (cursor and JSON batches, default) or nchan (Nchan's longpoll)\n"
         "  --poll-timeout S        switchboard: the `timeout` of each poll (default 60, the endpoint's cap)\n"
         "  --per-address N         pollers per loopback source address, 0: all from the default one (default 32)\n";
}

/// One whole response: its status, framing and bytes.
struct http_response {
  int status = 0;
  bool keep_alive = false;
  std::string head;  ///< status line and fields, without the empty line
  std::string body;
};

/// Collects received bytes and cuts them into whole responses (tools/response_parser.hpp does the framing).
class response_reader {
 public:
  void append(std::string_view bytes) { raw_.append(bytes); }

  /// Moves the next whole response into `out`: true when one has arrived. Throws std::runtime_error when the
  /// bytes are not HTTP.
  bool next(http_response& out) {
    const auto step = parser_.parse(std::string_view(raw_).substr(parsed_), &body_);
    parsed_ += step.consumed;
    if (step.error != http_load::parse_error::none) {
      throw std::runtime_error("bad response: " + std::string(to_string(step.error)));
    }
    if (!step.complete) return false;
    out.status = parser_.status();
    out.keep_alive = parser_.keep_alive();
    out.head = raw_.substr(0, raw_.find("\r\n\r\n"));
    out.body = std::move(body_);
    body_.clear();
    raw_.erase(0, parsed_);
    parsed_ = 0;
    return true;
  }

 private:
  std::string raw_;     // bytes of the current response (and any after it)
  std::size_t parsed_ = 0;
  std::string body_;
  http_load::response_parser parser_;
};

/// The value of field `name` in a response head, trimmed; empty when absent.
std::string_view field(std::string_view head, std::string_view name) {
  std::size_t start = head.find("\r\n");
  while (start != std::string_view::npos) {
    start += 2;
    const std::size_t end = std::min(head.find("\r\n", start), head.size());
    const std::string_view line = head.substr(start, end - start);
    const std::size_t colon = line.find(':');
    if (colon == name.size()) {
      bool same = true;
      for (std::size_t i = 0; i < colon && same; ++i) {
        same = std::tolower(static_cast<unsigned char>(line[i])) == name[i];
      }
      if (same) {
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        return value;
      }
    }
    start = end == head.size() ? std::string_view::npos : end;
  }
  return {};
}

/// Sends `request` on `socket` and reads its whole response, blocking.
http_response round_trip(tcp::socket& socket, const std::string& request) {
  asio::write(socket, asio::buffer(request));
  response_reader reader;
  http_response response;
  std::array<char, 16 * 1024> chunk{};
  while (!reader.next(response)) {
    reader.append(std::string_view(chunk.data(), socket.read_some(asio::buffer(chunk))));
  }
  return response;
}

/// What every poller shares: the protocol and the request parts.
struct poll_setup {
  protocol wire;
  std::string path;          ///< --subscribe-path
  std::string host_field;    ///< "host:port"
  unsigned poll_timeout_s;

  /// The next poll's request.
  std::string request(std::uint64_t cursor, std::string_view last_modified, std::string_view etag) const {
    std::string r = "GET " + path;
    if (wire == protocol::switchboard) {
      r += (path.find('?') == std::string::npos ? "?cursor=" : "&cursor=") + std::to_string(cursor) +
           "&timeout=" + std::to_string(poll_timeout_s);
    }
    r += " HTTP/1.1\r\nHost: " + host_field + "\r\n";
    if (!last_modified.empty()) r.append("If-Modified-Since: ").append(last_modified).append("\r\n");
    if (!etag.empty()) r.append("If-None-Match: ").append(etag).append("\r\n");
    return r + "\r\n";
  }
};

/// One poller: one poll outstanding at a time, polled again as soon as it is answered.
/// The usual answer, one message whose text needs no JSON escape, as longpoll/batch.hpp writes it:
/// `{"cursor":N,"messages":[{"data":"TEXT","seq":N}]}`, read without a JSON document. Anything else (several
/// messages, an escape, base64, a gap, a reset) gives nullopt, for `decode_batch`. With 4 KiB messages the JSON
/// document had made this client, not the server, the limit of the run.
struct single_message {
  std::uint64_t cursor = 0;
  std::string_view data;
};

std::optional<single_message> read_single_message(std::string_view body) {
  const auto skip = [&body](std::string_view literal) {
    if (!body.starts_with(literal)) return false;
    body.remove_prefix(literal.size());
    return true;
  };
  const auto number = [&body]() -> std::optional<std::uint64_t> {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), n);
    if (ec != std::errc()) return std::nullopt;
    body.remove_prefix(static_cast<std::size_t>(end - body.data()));
    return n;
  };
  single_message m;
  if (!skip("{\"cursor\":")) return std::nullopt;
  const auto cursor = number();
  if (!cursor || !skip(",\"messages\":[{\"data\":\"")) return std::nullopt;
  const std::size_t quote = body.find('"');
  if (quote == std::string_view::npos) return std::nullopt;
  m.data = body.substr(0, quote);
  if (m.data.find('\\') != std::string_view::npos) return std::nullopt;  // escaped: the decoder unescapes
  body.remove_prefix(quote);
  if (!skip("\",\"seq\":")) return std::nullopt;
  const auto sequence = number();
  if (!sequence || *sequence != *cursor || body != "}]}") return std::nullopt;
  m.cursor = *cursor;
  return m;
}

class poller final : public load_tools::socket_subscriber {
 public:
  /// `socket` is connected; switchboard: `cursor` is where to poll from. An answer is a few hundred bytes.
  poller(tcp::socket socket, const poll_setup& setup, std::uint64_t cursor, load_tools::fanout_client& owner)
      : socket_subscriber(std::move(socket), tool, "poller", 4096), setup_(setup), owner_(owner), cursor_(cursor) {}

  /// Sends the first poll, blocking: it goes out as the poller is opened, so that it is parked before anything
  /// is published.
  void send_first() { asio::write(socket(), asio::buffer(request())); }

 private:
  void received(std::string_view bytes) override {
    reader_.append(bytes);
    try {
      while (!failed() && reader_.next(response_)) answered(clock_type::now());
    } catch (const std::exception& e) {
      fail(e.what());
    }
  }

  // A poll was answered at `now`: hands its messages to the run and polls again.
  void answered(clock_type::time_point now) {
    if (!response_.keep_alive) return fail("the server closes the connection after an answer");
    if (response_.status == 200) {
      if (setup_.wire == protocol::switchboard) {
        if (const auto single = read_single_message(response_.body)) {
          if (!owner_.on_message(single->data, now)) return fail("a message this client did not publish");
          cursor_ = single->cursor;
          return poll_again();
        }
        const auto batch = switchboard::longpoll::decode_batch(response_.body);
        if (!batch) return fail("not a long-poll batch: " + response_.body.substr(0, 200));
        if (batch->missed) return fail("a gap (messages no longer retained) after cursor " + std::to_string(cursor_));
        if (batch->reset) return fail("a reset: the cursor is ahead of the topic");
        for (const auto& m : batch->messages) {
          if (!owner_.on_message(m.data, now)) return fail("a message this client did not publish");
        }
        cursor_ = batch->cursor;
      } else {
        if (!owner_.on_message(response_.body, now)) return fail("a message this client did not publish");
        last_modified_ = field(response_.head, "last-modified");
        etag_ = field(response_.head, "etag");
        if (last_modified_.empty() && etag_.empty()) return fail("an answer without Last-Modified or Etag");
      }
    } else if (response_.status != 304) {
      return fail("a poll answered " + std::to_string(response_.status) + ": " + response_.body.substr(0, 200));
    }
    poll_again();
  }

  void poll_again() {
    out_ = request();
    asio::async_write(socket(), asio::buffer(out_), [this](std::error_code ec, std::size_t) {
      if (ec) fail(ec.message());
    });
  }

  std::string request() const { return setup_.request(cursor_, last_modified_, etag_); }

  const poll_setup& setup_;
  load_tools::fanout_client& owner_;
  std::uint64_t cursor_;         // switchboard: the cursor of the next poll
  std::string last_modified_;    // nchan: of the last answer
  std::string etag_;             // nchan: of the last answer
  response_reader reader_;
  http_response response_;
  std::string out_;              // the poll being written
};

/// The cursor a switchboard poller starts from: the topic's now (`timeout=0` answers at once).
std::uint64_t current_cursor(tcp::socket& socket, const poll_setup& setup) {
  const http_response r = round_trip(
      socket, "GET " + setup.path + (setup.path.find('?') == std::string::npos ? "?" : "&") +
                  "timeout=0 HTTP/1.1\r\nHost: " + setup.host_field + "\r\n\r\n");
  if (r.status != 200) {
    throw std::runtime_error("GET " + setup.path + "?timeout=0 answered " + std::to_string(r.status) + ": " +
                             r.body.substr(0, 200));
  }
  const auto batch = switchboard::longpoll::decode_batch(r.body);
  if (!batch) {
    throw std::runtime_error("GET " + setup.path + "?timeout=0 answered no long-poll batch: " + r.body.substr(0, 200));
  }
  return batch->cursor;
}

/// Waits until Nchan's channel information (GET `path` on its publisher location, Accept: text/json) counts at
/// least `expected` subscribers; throws when it does not within `timeout`.
void wait_for_nchan_subscribers(asio::io_context& context, const tcp::endpoint& server, const std::string& host_field,
                                const std::string& path, std::size_t expected, std::chrono::seconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  tcp::socket socket(context);
  socket.connect(server);
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host_field + "\r\nAccept: text/json\r\n\r\n";
  std::size_t subscribers = 0;
  for (;;) {
    const http_response r = round_trip(socket, request);
    // 404: the channel does not exist yet (no subscriber has reached it).
    if (r.status != 200 && r.status != 404) {
      throw std::runtime_error("GET " + path + " (channel information) answered " + std::to_string(r.status));
    }
    if (r.status == 200) {
      const std::size_t key = r.body.find("\"subscribers\"");
      const std::size_t digits = key == std::string::npos ? key : r.body.find_first_of("0123456789", key);
      if (digits == std::string::npos) throw std::runtime_error("no subscriber count in: " + r.body.substr(0, 200));
      std::from_chars(r.body.data() + digits, r.body.data() + r.body.size(), subscribers);
      if (subscribers >= expected) return;
    }
    if (clock_type::now() > deadline) {
      throw std::runtime_error("Nchan counts " + std::to_string(subscribers) + " of " + std::to_string(expected) +
                               " subscribers");
    }
    // Nchan has no way to wait for the count: ask again shortly, a bounded number of times (the deadline).
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

int main(int argc, char** argv) {
  const load_tools::fanout_cli cli(tool, usage_text(), default_path);
  poll_options own;
  const load_tools::fanout_options o = cli.parse(argc, argv, [&](std::string_view flag, std::string_view value) {
    if (flag == "--protocol") {
      if (value != "switchboard" && value != "nchan") cli.usage_error("--protocol is switchboard or nchan");
      own.wire = value == "nchan" ? protocol::nchan : protocol::switchboard;
    } else if (flag == "--poll-timeout") {
      own.poll_timeout_s = cli.number(value, 1, 3600, flag);
    } else if (flag == "--per-address") {
      own.per_address = cli.number(value, 0, 100000, flag);
    } else {
      return false;
    }
    return true;
  });
  const std::size_t pollers = o.run_mode == load_tools::fanout_mode::check ? 1 : o.connections;
  if (!load_tools::raise_file_limit(pollers + 2)) {
    std::fprintf(stderr, "%s: %zu connections need more open files than the hard limit allows\n", tool, pollers);
    return 1;
  }
  load_tools::fanout_client run(o, tool);
  const poll_setup setup{own.wire, o.subscribe_path, run.host_field(), own.poll_timeout_s};
  const asio::ip::address host = asio::ip::make_address(o.host);
  // 127.0.0.0/8 is all loopback (RFC 1122 §3.2.1.3): any address in it reaches a server on 127.0.0.1.
  const bool spread = own.per_address > 0 && host.is_v4() && (host.to_v4().to_uint() >> 24) == 127;
  const auto open = [&](asio::io_context& context, const tcp::endpoint& server,
                        std::size_t index) -> std::unique_ptr<load_tools::subscriber_base> {
    tcp::socket socket(context);
    socket.open(tcp::v4());
    if (spread) {
      const auto source = static_cast<std::uint32_t>((127u << 24 | 1u << 16) + 1 + index / own.per_address);
      socket.bind({asio::ip::address_v4(source), 0});
    }
    socket.connect(server);
    socket.set_option(tcp::no_delay(true));
    const std::uint64_t cursor = setup.wire == protocol::switchboard ? current_cursor(socket, setup) : 0;
    auto p = std::make_unique<poller>(std::move(socket), setup, cursor, run);
    p->send_first();
    return p;
  };
  const auto ready = [&] {
    if (setup.wire != protocol::nchan) return;
    asio::io_context context;
    wait_for_nchan_subscribers(context, {host, static_cast<unsigned short>(o.port)}, setup.host_field, o.publish_path,
                               pollers, std::chrono::seconds(o.connect_timeout_s));
  };
  if (!run.connect_all(pollers, open, ready)) return 1;
  return run.run();
}
