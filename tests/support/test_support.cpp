#include "support/test_support.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace switchboard::test {

bool run_until(asio::io_context& ctx, const std::function<bool()>& done, std::chrono::steady_clock::duration deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    if (ctx.stopped()) ctx.restart();
    // run_one_for returns after one handler or the slice; the slice bounds how long a check can lag.
    ctx.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

void keep_busy_until(std::chrono::steady_clock::time_point until) {
  while (std::chrono::steady_clock::now() < until) {
  }
}

namespace {

std::vector<char*> make_argv(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  out.reserve(argv.size() + 1);
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

process_result run_process(const std::vector<std::string>& argv, std::chrono::steady_clock::duration deadline,
                           const std::string& stdin_data) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0 || pipe2(in_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  pid_t pid = -1;
  auto args = make_argv(argv);
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  close(in_pipe[0]);
  process_result result;
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    close(in_pipe[1]);
    result.err = std::string("spawn failed: ") + std::strerror(rc);
    return result;
  }
  // Feed stdin from a thread so that a child that writes a lot before reading cannot deadlock us.
  std::thread feeder([fd = in_pipe[1], data = stdin_data] {
    signal(SIGPIPE, SIG_IGN);
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = write(fd, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    close(fd);
  });
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    const int n = poll(fds.data(), fds.size(), static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? result.out : result.err).append(buf, static_cast<std::size_t>(got));
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  feeder.join();
  result.exit_code = result.timed_out ? -1000 : decode_status(status);
  return result;
}

background_process::background_process(const std::vector<std::string>& argv, const std::string& log_path)
    : log_path_(log_path) {
  const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot open " + log_path);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fd, 1);
  posix_spawn_file_actions_adddup2(&actions, fd, 2);
  auto args = make_argv(argv);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fd);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  pid_ = pid;
}

background_process::~background_process() {
  if (pid_ > 0 && !exit_code_) stop();
}

bool background_process::running() {
  if (exit_code_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = decode_status(status);
    return false;
  }
  return true;
}

int background_process::stop(std::chrono::steady_clock::duration grace) {
  if (exit_code_) return *exit_code_;
  // A pidfd becomes readable when the process exits, so we wait on that event with the grace as deadline.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  kill(pid_, SIGTERM);
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(grace).count();
    while (poll(&p, 1, static_cast<int>(ms)) < 0 && errno == EINTR) {
    }
    close(pidfd);
  }
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  exit_code_ = decode_status(status);
  return *exit_code_;
}

std::string background_process::log() const { return read_file(log_path_); }

std::string background_process::wait_for_line(const std::string& text, std::chrono::steady_clock::duration deadline) {
  // The log is a file the child appends to: inotify tells us when it changes, so we wait on that event.
  const int fd = inotify_init1(IN_CLOEXEC);
  const int watch = fd >= 0 ? inotify_add_watch(fd, log_path_.c_str(), IN_MODIFY) : -1;
  const auto until = std::chrono::steady_clock::now() + deadline;
  std::string found;
  for (;;) {
    const std::string all = log();
    std::size_t pos = all.find(text);
    if (pos != std::string::npos) {
      const std::size_t begin = all.rfind('\n', pos);
      const std::size_t end = all.find('\n', pos);
      found = all.substr(begin == std::string::npos ? 0 : begin + 1,
                         (end == std::string::npos ? all.size() : end) - (begin == std::string::npos ? 0 : begin + 1));
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !running() || watch < 0) break;
    // Wake on a change to the log, or at least every 100 ms to notice that the process exited.
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100))) > 0) {
      char events[4096];
      (void)!read(fd, events, sizeof events);
    }
  }
  if (fd >= 0) close(fd);
  return found;
}

bool have_program(const std::string& program) {
  return run_process({"sh", "-c", "command -v " + program}, std::chrono::seconds(5)).exit_code == 0;
}

namespace {

std::string bio_to_string(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

test_certificate make_certificate() {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) throw std::runtime_error("openssl: cannot make a key");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  const char* extensions[][2] = {{"subjectAltName", "DNS:localhost,IP:127.0.0.1,IP:::1"},
                                 {"basicConstraints", "critical,CA:TRUE"},
                                 {"keyUsage", "critical,digitalSignature,keyCertSign"}};
  for (const auto& e : extensions) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, OBJ_txt2nid(e[0]), e[1]);
    if (ext == nullptr) throw std::runtime_error("openssl: bad extension");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) throw std::runtime_error("openssl: cannot sign");
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(cert_bio.get(), cert.get());
  PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  return {bio_to_string(cert_bio.get()), bio_to_string(key_bio.get())};
}

}  // namespace

const test_certificate& localhost_certificate() {
  static const test_certificate cert = make_certificate();
  return cert;
}

std::shared_ptr<asio::ssl::context> localhost_server_tls() {
  auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  tls->use_certificate_chain(asio::buffer(localhost_certificate().certificate_pem));
  tls->use_private_key(asio::buffer(localhost_certificate().private_key_pem), asio::ssl::context::pem);
  return tls;
}

std::shared_ptr<asio::ssl::context> localhost_client_tls() {
  auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  tls->add_certificate_authority(asio::buffer(localhost_certificate().certificate_pem));
  tls->set_verify_mode(asio::ssl::verify_peer);
  return tls;
}

std::string write_temp_file(const std::string& name, const std::string& contents) {
  const std::string path = std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

scratch_directory::scratch_directory(const std::string& prefix) {
  std::string name = std::string(SWITCHBOARD_TEST_BINARY_DIR) + "/" + prefix + "XXXXXX";
  if (mkdtemp(name.data()) == nullptr) throw std::runtime_error("cannot make a directory like " + name);
  path_ = std::move(name);
}

scratch_directory::~scratch_directory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace switchboard::test
