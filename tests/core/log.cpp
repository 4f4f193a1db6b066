#include <switchboard/core/log.hpp>
#include <switchboard/core/overflow_policy.hpp>

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fcntl.h>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

using switchboard::log;
using switchboard::log_level;

namespace {

struct record {
  log_level level;
  std::string component;
  std::string message;
  bool operator==(const record&) const = default;
};

// Installs a sink that captures records for the duration of a test, and restores the defaults after it.
class capture {
 public:
  capture() {
    switchboard::set_log_level(log_level::trace);
    switchboard::set_log_sink([this](log_level level, std::string_view component, std::string_view message) {
      const std::lock_guard lock(mutex_);
      records_.push_back({level, std::string(component), std::string(message)});
    });
  }
  ~capture() {
    switchboard::set_log_sink({});
    switchboard::set_log_level(log_level::info);
  }
  std::vector<record> records() {
    const std::lock_guard lock(mutex_);
    return records_;
  }

 private:
  std::mutex mutex_;
  std::vector<record> records_;
};

// An enum whose to_string counts its calls: shows whether a part was formatted.
enum class probe { value };
int probe_formatted = 0;
std::string_view to_string(probe) {
  ++probe_formatted;
  return "probe";
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<record> {
  static std::string convert(const record& r) {
    std::string out = "{";
    out += switchboard::to_string(r.level);
    out += " [";
    out += r.component;
    out += "] ";
    out += r.message;
    out += '}';
    return out;
  }
};
}  // namespace Catch

TEST_CASE("log: records reach the sink", "[core][log]") {
  capture c;
  log(log_level::info, "http", "listening on port ", 8080);
  log(log_level::error, "ws", "closed");
  CHECK(c.records() == std::vector<record>{{log_level::info, "http", "listening on port 8080"},
                                           {log_level::error, "ws", "closed"}});
}

TEST_CASE("log: the threshold filters, without formatting what it drops", "[core][log]") {
  capture c;
  probe_formatted = 0;
  switchboard::set_log_level(log_level::warn);
  CHECK(switchboard::get_log_level() == log_level::warn);
  CHECK(!switchboard::log_enabled(log_level::info));
  CHECK(switchboard::log_enabled(log_level::warn));
  log(log_level::trace, "x", probe::value);
  log(log_level::debug, "x", probe::value);
  log(log_level::info, "x", probe::value);
  CHECK(probe_formatted == 0);
  log(log_level::warn, "x", probe::value);
  log(log_level::error, "x", probe::value);
  CHECK(probe_formatted == 2);
  CHECK(c.records().size() == 2);

  SECTION("off disables everything, and off is never a record's level") {
    switchboard::set_log_level(log_level::off);
    log(log_level::error, "x", "dropped");
    switchboard::set_log_level(log_level::trace);
    log(log_level::off, "x", "dropped too");
    CHECK(c.records().size() == 2);
    CHECK(!switchboard::log_enabled(log_level::off));
  }
}

TEST_CASE("log: message parts", "[core][log]") {
  capture c;
  const std::string text = "string";
  const char* null_text = nullptr;
  log(log_level::info, "t", "a ", text, ' ', std::string_view("view"), ' ', null_text);
  log(log_level::info, "t", -42, ' ', std::numeric_limits<std::uint64_t>::max(), ' ', 1.5, ' ', 0.1, ' ', true, ' ',
      false);
  log(log_level::info, "t", std::make_error_code(std::errc::connection_reset));
  log(log_level::info, "t", switchboard::overflow_policy::drop_oldest, ' ', log_level::warn);
  log(log_level::info, "t");
  const auto r = c.records();
  REQUIRE(r.size() == 5);
  CHECK(r[0].message == "a string view (null)");
  CHECK(r[1].message == "-42 18446744073709551615 1.5 0.1 true false");
  CHECK(r[2].message == std::make_error_code(std::errc::connection_reset).message() + " [generic:" +
                            std::to_string(static_cast<int>(std::errc::connection_reset)) + "]");
  CHECK(r[3].message == "drop_oldest warn");
  CHECK(r[4].message.empty());
}

TEST_CASE("log: a throwing sink does not escape log", "[core][log]") {
  capture c;
  switchboard::set_log_sink([](log_level, std::string_view, std::string_view) { throw std::runtime_error("sink"); });
  CHECK_NOTHROW(log(log_level::error, "x", "boom"));
}

TEST_CASE("log: the default sink writes one line per record to stderr", "[core][log]") {
  SECTION("the line format") {
    using namespace std::chrono;
    const system_clock::time_point t = sys_days{year{2024} / 5 / 1} + 12h + 3min + 4s + 56ms;
    std::string line;
    switchboard::detail::append_log_line(t, log_level::warn, "http", "two\nlines\r", line);
    CHECK(line == "2024-05-01T12:03:04.056Z warn [http] two\\nlines\\r\n");
  }
  SECTION("written to file descriptor 2") {
    // Send stderr to a file for the duration of one record, then put it back.
    const std::string path = switchboard::test::write_temp_file("log_default_sink.txt", "");
    std::fflush(stderr);
    const int saved = ::dup(2);
    const int file = ::open(path.c_str(), O_WRONLY | O_TRUNC);
    REQUIRE(saved >= 0);
    REQUIRE(file >= 0);
    ::dup2(file, 2);
    switchboard::set_log_sink({});
    switchboard::set_log_level(log_level::info);
    log(log_level::error, "core", "to stderr ", 1);
    log(log_level::debug, "core", "not written");
    std::fflush(stderr);
    ::dup2(saved, 2);
    ::close(saved);
    ::close(file);
    const std::string written = switchboard::test::read_file(path);
    INFO(written);
    CHECK(written.ends_with(" error [core] to stderr 1\n"));
    CHECK(written.find("not written") == std::string::npos);
    CHECK(std::count(written.begin(), written.end(), '\n') == 1);
  }
}

TEST_CASE("log: logging while the sink is replaced from another thread", "[core][log]") {
  capture c;
  std::atomic<int> other_sink_records{0};
  std::atomic<bool> stop{false};
  std::thread replacer([&] {
    while (!stop) {
      switchboard::set_log_sink([&](log_level, std::string_view, std::string_view m) {
        if (m == "record") ++other_sink_records;
      });
      switchboard::set_log_sink([&](log_level, std::string_view, std::string_view m) {
        if (m == "record") ++other_sink_records;
      });
    }
  });
  std::vector<std::thread> loggers;
  for (int t = 0; t < 3; ++t) {
    loggers.emplace_back([] {
      for (int i = 0; i < 2000; ++i) log(log_level::info, "t", "rec", "ord");
    });
  }
  for (auto& l : loggers) l.join();
  stop = true;
  replacer.join();
  // Every record reached one of the sinks, whole.
  std::size_t captured = 0;
  for (const record& r : c.records()) {
    CHECK(r.message == "record");
    ++captured;
  }
  CHECK(captured + static_cast<std::size_t>(other_sink_records.load()) == 3 * 2000);
}

namespace {

// Logs from its destructor, as a service object with static storage may during the program's exit.
struct logs_when_destroyed {
  ~logs_when_destroyed() { log(log_level::error, "exit", "from a static destructor"); }
};

}  // namespace

// Run by the next test in a process of its own: a static object made before the first `log` call is destroyed
// after anything made later, and logs then. The sink writes to standard output with write(2).
TEST_CASE("log: child that logs during static destruction", "[.log_at_exit_child]") {
  static logs_when_destroyed made_first;
  switchboard::set_log_sink([](log_level, std::string_view component, std::string_view message) {
    const std::string line = std::string(component) + ": " + std::string(message) + "\n";
    (void)::write(1, line.data(), line.size());
  });
  log(log_level::error, "main", "running");
}

TEST_CASE("log: logging from a static destructor at exit reaches the sink", "[core][log]") {
  // The sink's slot used to be a function-local static, made at the first log call and so destroyed before such
  // an object: its log call then read a freed sink (use-after-free, which AddressSanitizer reports).
  const auto result = switchboard::test::run_process({"/proc/self/exe", "[.log_at_exit_child]"});
  INFO(result.out << result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.out.find("main: running\n") != std::string::npos);
  CHECK(result.out.find("exit: from a static destructor\n") != std::string::npos);
}
