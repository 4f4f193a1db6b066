// A consumer of the installed (or vendored) library: includes the umbrella header and runs an event loop.
#include <switchboard/switchboard.hpp>

#include <cstdio>

int main() {
  switchboard::bounded_queue<int> q(switchboard::queue_limits{.max_messages = 2});
  q.push(1);
  std::printf("switchboard %s\n", switchboard::version_string);
  return q.size() == 1 ? 0 : 1;
}
