// A consumer of the installed (or vendored) library: includes the umbrella header and runs an event loop.
#include <switchboard/switchboard.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cstdio>
#include <thread>

int main() {
  switchboard::bounded_queue<int> q(switchboard::queue_limits{.max_messages = 2});
  q.push(1);
  // Asio and the threads library at run time: a handler posted to an event loop runs on another thread.
  asio::io_context loop;
  bool ran = false;
  asio::post(loop, [&ran] { ran = true; });
  std::thread runner([&loop] { loop.run(); });
  runner.join();
  std::printf("switchboard %s\n", switchboard::version_string);
  return q.size() == 1 && ran ? 0 : 1;
}
