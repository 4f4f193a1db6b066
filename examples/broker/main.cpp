// broker: the in-process pub/sub broker behind its Redis-protocol front end. Any Redis client publishes and
// subscribes to it; SIGTERM (or SIGINT) drains the clients and exits.
//
//   build/release/bin/broker --port 6380 --threads 1 [--requirepass secret]
//   redis-cli -p 6380 subscribe news            # in one terminal
//   redis-cli -p 6380 publish news hello        # in another: (integer) 1
#include "common/example_options.hpp"

#include <switchboard/core/runtime.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/resp_server.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  const auto opts = examples::parse(argc, argv, 6380, {"--requirepass"},
                                    "\n  --requirepass  password clients must AUTH with (default: none)");
  switchboard::runtime rt({.threads = opts.threads});
  switchboard::pubsub::broker broker(rt.executor());
  switchboard::pubsub::resp_server server(rt, broker,
                                          {.bind = opts.bind,
                                           .port = static_cast<std::uint16_t>(opts.port),
                                           .requirepass = opts.get("requirepass", ""),
                                           .max_clients = opts.max_connections,
                                           .max_clients_per_address = opts.max_connections_per_address});
  try {
    server.start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "broker: cannot listen on %s:%u: %s\n", opts.bind.c_str(), opts.port, e.what());
    return 1;
  }
  examples::announce(server.url());
  const auto report = rt.run();
  examples::report_drain(report.drained, report.cut);
}
