// Helpers shared by the tests: running an io_context until something happens (never sleeping), starting real
// peers (curl, redis-server, node) as child processes, and a certificate made at test time for TLS tests.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::test {

using namespace std::chrono_literals;

/// Runs `ctx` until `done()` is true or `deadline` passes; returns whether `done()` became true.
/// The io_context is restarted if it ran out of work, so the test keeps waiting on the deadline, not on luck.
bool run_until(asio::io_context& ctx, const std::function<bool()>& done,
               std::chrono::steady_clock::duration deadline = 10s);

/// Runs every handler that is ready now (restarting `ctx` first if an earlier run stopped it for lack of work).
inline std::size_t poll(asio::io_context& ctx) {
  ctx.restart();
  return ctx.poll();
}

/// Keeps the calling thread busy until `until`: called in a handler, it makes its event loop as late as a loaded one
/// (timers that fall due meanwhile complete only after the handler returns). Not a way to wait for something.
void keep_busy_until(std::chrono::steady_clock::time_point until);

/// The output and exit status of a finished child process.
struct process_result {
  int exit_code = -1;      ///< exit status, or -signal if killed by a signal, or -1000 if it was cut at the deadline
  std::string out;         ///< standard output
  std::string err;         ///< standard error
  bool timed_out = false;  ///< true when the deadline passed and the process was killed
};

/// Runs `argv` to completion with a deadline, capturing its output. Kills (SIGKILL) only that process on timeout.
process_result run_process(const std::vector<std::string>& argv, std::chrono::steady_clock::duration deadline = 30s,
                           const std::string& stdin_data = {});

/// A child process that runs in the background until stopped (servers such as redis-server, node peers).
/// Its standard output and error go to `log_path` (a file under the test binary directory).
class background_process {
 public:
  background_process(const std::vector<std::string>& argv, const std::string& log_path);
  ~background_process();
  background_process(const background_process&) = delete;
  background_process& operator=(const background_process&) = delete;

  int pid() const noexcept { return pid_; }
  /// Sends SIGTERM, waits up to `grace`, then SIGKILL. Returns the exit code (as in process_result).
  int stop(std::chrono::steady_clock::duration grace = 5s);
  /// True while the process has not exited.
  bool running();
  /// The log so far.
  std::string log() const;
  /// Waits (with a deadline) until the process's log holds a line containing `text`, and returns that line.
  /// Empty if the deadline passed or the process exited first.
  std::string wait_for_line(const std::string& text, std::chrono::steady_clock::duration deadline = 30s);

 private:
  int pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

/// A fresh directory under the test binary directory (`prefix` and a random suffix), removed with everything in
/// it when the object goes away: the working files of a child process (a redis-server's log and cluster state),
/// so that test runs do not pile up files.
class scratch_directory {
 public:
  explicit scratch_directory(const std::string& prefix);
  ~scratch_directory();
  scratch_directory(const scratch_directory&) = delete;
  scratch_directory& operator=(const scratch_directory&) = delete;

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// True when `program` is found on PATH.
bool have_program(const std::string& program);

/// A self-signed certificate for "localhost" and 127.0.0.1, made at test time (ECDSA P-256), in PEM.
struct test_certificate {
  std::string certificate_pem;
  std::string private_key_pem;
};
const test_certificate& localhost_certificate();
/// A TLS server context that presents localhost_certificate().
std::shared_ptr<asio::ssl::context> localhost_server_tls();
/// A TLS client context that trusts localhost_certificate() and verifies the peer (and, in the clients, its name).
std::shared_ptr<asio::ssl::context> localhost_client_tls();

/// Writes `contents` to a file under the test binary directory and returns its path.
std::string write_temp_file(const std::string& name, const std::string& contents);

/// Reads a whole file.
std::string read_file(const std::string& path);

}  // namespace switchboard::test
