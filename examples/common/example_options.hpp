// Command-line options shared by the example servers: --bind, --port, --threads, --max-connections,
// --max-connections-per-address (and any extra
// --name value pairs an example declares). Parsing errors print usage and exit with status 2.
#pragma once

#include <switchboard/http/server_options.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <thread>

namespace examples {

struct options {
  std::string bind = "127.0.0.1";
  unsigned port = 8080;
  std::size_t threads = 0;  // 0: one per hardware thread
  std::size_t max_connections = switchboard::http::server_options{}.max_connections;
  std::size_t max_connections_per_address = 0;  // no limit
  std::map<std::string, std::string> extra;

  /// The HTTP server's options these give (the rest at their defaults).
  switchboard::http::server_options server() const {
    switchboard::http::server_options o;
    o.bind = bind;
    o.port = static_cast<std::uint16_t>(port);
    o.max_connections = max_connections;
    o.max_connections_per_address = max_connections_per_address;
    return o;
  }

  std::string get(const std::string& name, std::string fallback) const {
    auto it = extra.find(name);
    return it == extra.end() ? fallback : it->second;
  }
  /// The value of the numeric option `--name`, or `fallback` when it was not given. A value that is not a whole
  /// decimal number from 0 to `max` ("2m", "5x", "abc", a count past any sane bound) prints why and exits with
  /// status 2, as the options above do.
  long get_number(const std::string& name, long fallback, long max = 1'000'000'000) const {
    auto it = extra.find(name);
    if (it == extra.end()) return fallback;
    const std::string& text = it->second;
    long value = -1;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > max) {
      std::fprintf(stderr, "--%s: expected a whole number from 0 to %ld, got \"%s\"\n", name.c_str(), max, text.c_str());
      std::exit(2);
    }
    return value;
  }
};

[[noreturn]] inline void usage(const char* program, std::string_view extra_help, unsigned default_port) {
  std::fprintf(stderr,
               "usage: %s [--bind ADDRESS] [--port PORT] [--threads N] [--max-connections N]\n"
               "       [--max-connections-per-address N]%.*s\n"
               "  --bind             address to listen on (default 127.0.0.1)\n"
               "  --port             TCP port (default %u; 0 picks a free one)\n"
               "  --threads          event-loop threads (default: one per hardware thread)\n"
               "  --max-connections  connections open at once; past it the server stops accepting (default %zu)\n"
               "  --max-connections-per-address\n"
               "                     connections open at once from one client address, WebSockets included; past\n"
               "                     it new ones are closed at once (default 0: no limit)\n",
               program, static_cast<int>(extra_help.size()), extra_help.data(), default_port,
               switchboard::http::server_options{}.max_connections);
  std::exit(2);
}

/// Parses argv. `extra_names` lists additional "--name" options that take a value, e.g. {"--retain"}.
inline options parse(int argc, char** argv, unsigned default_port, std::initializer_list<std::string_view> extra_names = {},
                     std::string_view extra_help = {}) {
  options o;
  o.port = default_port;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") usage(argv[0], extra_help, default_port);
    if (i + 1 >= argc) usage(argv[0], extra_help, default_port);
    const std::string value = argv[++i];
    auto number = [&](auto& out) {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
      if (ec != std::errc() || end != value.data() + value.size()) usage(argv[0], extra_help, default_port);
    };
    if (arg == "--bind") {
      o.bind = value;
    } else if (arg == "--port") {
      number(o.port);
      if (o.port > 65535) usage(argv[0], extra_help, default_port);
    } else if (arg == "--threads") {
      number(o.threads);
    } else if (arg == "--max-connections") {
      number(o.max_connections);
      if (o.max_connections == 0) usage(argv[0], extra_help, default_port);
    } else if (arg == "--max-connections-per-address") {
      number(o.max_connections_per_address);
    } else {
      bool known = false;
      for (auto name : extra_names) known = known || name == arg;
      if (!known) usage(argv[0], extra_help, default_port);
      o.extra[std::string(arg.substr(2))] = value;
    }
  }
  return o;
}

/// Prints the line scripts and tests wait for, and flushes it at once.
inline void announce(const std::string& url) {
  std::printf("listening on %s\n", url.c_str());
  std::fflush(stdout);
}

/// Prints what the drain did when the server stops.
inline void report_drain(std::size_t drained, std::size_t cut) {
  std::fprintf(stderr, "drained %zu connection(s), cut %zu\n", drained, cut);
}

}  // namespace examples
