// 10,000 parked polls, all answered by one publish. The clients live in a child process (forked before the
// server starts any thread) so that neither process needs more than ~10,000 descriptors. Also prints what a
// parked poll costs the server beyond its (already open, idle) connection: the resident memory before and after
// parking, divided by the number parked. Informational only: tests never assert speed or size.
#include <switchboard/longpoll/endpoint.hpp>

#include "longpoll_support.hpp"
#include "support/catch.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <utility>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace switchboard;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t clients = 10'000;

// Resident memory of this process, from /proc/self/statm (pages).
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

bool write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads one response on each socket (all in parallel, with poll(2)) and counts those that are 200 and contain
// `needle`. Gives up at the deadline.
std::size_t read_responses(const std::vector<int>& sockets, const std::string& needle) {
  std::vector<std::string> got(sockets.size());
  std::vector<bool> done(sockets.size(), false);
  std::size_t finished = 0, good = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  std::vector<pollfd> fds;
  while (finished < sockets.size() && std::chrono::steady_clock::now() < deadline) {
    fds.clear();
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (!done[i]) fds.push_back({sockets[i], POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 1000) <= 0) continue;
    for (std::size_t i = 0, k = 0; i < sockets.size(); ++i) {
      if (done[i]) continue;
      const pollfd& p = fds[k++];
      if (p.revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(sockets[i], buffer, sizeof buffer);
      if (n > 0) got[i].append(buffer, static_cast<std::size_t>(n));
      const std::size_t head_end = got[i].find("\r\n\r\n");
      const std::size_t length_at = got[i].find("Content-Length: ");
      const bool complete = head_end != std::string::npos && length_at != std::string::npos &&
                            got[i].size() >= head_end + 4 + std::stoul(got[i].substr(length_at + 16));
      if (complete || n <= 0) {
        done[i] = true;
        ++finished;
        if (complete && got[i].starts_with("HTTP/1.1 200") && got[i].find(needle) != std::string::npos) ++good;
      }
    }
  }
  return good;
}

// The child: connects `clients` sockets, idles them with one immediate poll each, then parks one poll on each
// and reports how many were answered by the publish. Protocol on the pipes: port in; 'I' (idle), 'P' (parked),
// then the count out.
[[noreturn]] void run_clients(int from_parent, int to_parent) {
  std::uint16_t port = 0;
  if (::read(from_parent, &port, sizeof port) != sizeof port) ::_exit(2);
  std::vector<int> sockets;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (std::size_t i = 0; i < clients; ++i) {
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) ::_exit(3);
    sockets.push_back(s);
  }
  const std::string now = "GET /topics/scale/poll?timeout=0 HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int s : sockets) {
    if (!write_all(s, now)) ::_exit(4);
  }
  std::uint32_t idle = static_cast<std::uint32_t>(read_responses(sockets, "\"messages\":[]"));
  if (!write_all(to_parent, "I") || ::write(to_parent, &idle, sizeof idle) != sizeof idle) ::_exit(5);
  char go = 0;
  if (::read(from_parent, &go, 1) != 1) ::_exit(6);
  const std::string wait = "GET /topics/scale/poll?timeout=120 HTTP/1.1\r\nHost: x\r\n\r\n";
  for (int s : sockets) {
    if (!write_all(s, wait)) ::_exit(7);
  }
  const std::uint32_t answered = static_cast<std::uint32_t>(read_responses(sockets, "\"data\":\"wake\""));
  if (::write(to_parent, &answered, sizeof answered) != sizeof answered) ::_exit(8);
  ::_exit(0);
}

template <class T>
bool read_exact(int fd, T& out) {
  return ::read(fd, &out, sizeof out) == static_cast<ssize_t>(sizeof out);
}

}  // namespace

TEST_CASE("10,000 parked polls are all answered by one publish", "[longpoll][endpoint][scale]") {
  rlimit files{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &files) == 0);
  if (files.rlim_cur < clients + 1000 && files.rlim_max >= clients + 1000) {
    files.rlim_cur = files.rlim_max;  // raised here, before the fork, for both processes
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &files) == 0);
  }
  INFO("needs " << clients + 1000 << " file descriptors per process; the limit is " << files.rlim_cur);
  REQUIRE(files.rlim_cur >= clients + 1000);
  int down[2], up[2];
  REQUIRE(::pipe(down) == 0);
  REQUIRE(::pipe(up) == 0);
  const pid_t child = ::fork();  // before the server starts its threads
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(down[1]);
    ::close(up[0]);
    run_clients(down[0], up[1]);
  }
  ::close(down[0]);
  ::close(up[1]);
  // If a REQUIRE below fails, the child is killed (by its pid) and reaped rather than left waiting on its pipe.
  struct reaper {
    pid_t pid;
    int status = 0;
    int wait() {
      if (pid > 0 && ::waitpid(std::exchange(pid, -1), &status, 0) < 0) status = -1;
      return status;
    }
    ~reaper() {
      if (pid > 0) ::kill(pid, SIGKILL);
      wait();
    }
  } child_process{child};
  std::uint32_t answered = 0;
  {
    test::poll_server s({.max_parked = clients, .max_parked_per_client = clients},
                        {.max_connections = clients + 100});
    const std::uint16_t port = s.server.port();
    const std::size_t empty = resident_bytes();
    REQUIRE(::write(down[1], &port, sizeof port) == sizeof port);
    char idle_mark = 0;
    std::uint32_t idle = 0;
    REQUIRE(read_exact(up[0], idle_mark));
    REQUIRE(read_exact(up[0], idle));
    CHECK(idle == clients);
    const std::size_t before = resident_bytes();
    REQUIRE(::write(down[1], "P", 1) == 1);
    REQUIRE(s.wait_for([&] { return s.polls.parked() == clients; }, 60s));
    const std::size_t after = resident_bytes();
    std::printf("longpoll: %zu idle connections: %+.0f bytes resident each; parked polls on them: %+.0f bytes each "
                "more\n", clients, (double(before) - double(empty)) / double(clients),
                (double(after) - double(before)) / double(clients));
    CHECK(s.broker.publish("scale", {.payload = shared_bytes::copy("wake")}).sequence == 1);
    CHECK(read_exact(up[0], answered));
    CHECK(s.polls.stats().woken == clients);
  }
  const int status = child_process.wait();
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(answered == clients);
  ::close(down[1]);
  ::close(up[0]);
}
