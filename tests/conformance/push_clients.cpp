// Real push clients against the notifications example: the `eventsource` package reconnecting and resuming after
// the server ends the stream, the `ws` package on rooms (plain and with permessage-deflate), and headless Chromium
// loading the notifications page, where a WebSocket, a rooms socket, an EventSource and conditional polling all
// receive the same events and the EventSource resumes after its stream is cut.
#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using namespace std::chrono_literals;
using switchboard::test::background_process;
using switchboard::test::run_process;

namespace {

// Starts notifications on a free port, ending SSE streams after a second so that clients must resume.
std::string start_notifications(std::unique_ptr<background_process>& p) {
  const std::string binary = std::string(SWITCHBOARD_EXAMPLES_DIR) + "/notifications";
  p = std::make_unique<background_process>(
      std::vector<std::string>{binary, "--port", "0", "--threads", "2", "--stream-max-age", "1"},
      std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/notifications.log");
  const std::string line = p->wait_for_line("listening on ");
  REQUIRE_FALSE(line.empty());
  return line.substr(line.find("http"));
}

std::string peer(const std::string& script) { return std::string(SWITCHBOARD_NODE_PEERS) + "/" + script; }

}  // namespace

TEST_CASE("the eventsource package (npm) resumes a topic after the server ends the stream", "[conformance][sse]") {
  REQUIRE(switchboard::test::have_program("node"));
  std::unique_ptr<background_process> server;
  const std::string url = start_notifications(server);
  auto r = run_process({"node", peer("sse_resume.mjs"), url, "resume"}, 40s);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(server->stop() == 0);
}

TEST_CASE("the ws package (npm) on rooms and per-topic sockets", "[conformance][ws]") {
  REQUIRE(switchboard::test::have_program("node"));
  std::unique_ptr<background_process> server;
  const std::string url = start_notifications(server);
  for (const char* mode : {"plain", "deflate"}) {
    INFO(mode);
    auto r = run_process({"node", peer("ws_rooms.mjs"), url, mode}, 30s);
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
  }
  CHECK(server->stop() == 0);
}

TEST_CASE("headless Chromium: every transport of the notifications page gets the same events", "[conformance][chromium]") {
  REQUIRE(switchboard::test::have_program("node"));
  REQUIRE(switchboard::test::have_program("chromium"));
  std::unique_ptr<background_process> server;
  const std::string url = start_notifications(server);
  const std::string profile = std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/chromium-profile";
  run_process({"rm", "-rf", profile});
  auto r = run_process({"node", peer("chromium_page.mjs"), url, "page", profile}, 60s);
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.starts_with("selftest:ok"));
  CHECK(server->stop() == 0);
}
