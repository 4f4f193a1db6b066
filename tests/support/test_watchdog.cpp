// A watchdog for every test executable: when one test case runs longer than its limit, it names the test case and
// the section it is in, then aborts. Without it a test that waits on something without a deadline shows up in CI
// only as "push ... Timeout 300 s", with no clue which of its cases hung.
//
// The limit is SWITCHBOARD_TEST_CASE_TIMEOUT seconds per test case or section (default 120: the slowest test case
// takes about 20 s on the 2-core CI machine, and CTest's own limit for a whole executable is 300 s). The watchdog
// waits on a condition variable with a deadline that every test case and section start moves. Before it aborts it
// prints every thread's stack with gdb, where gdb is installed (scripts/install-deps.sh installs it): a hang that CI
// met once and a machine here does not show again is then still found.
// Catch2 v2 declares its listener base only for translation units that ask for its reporter interfaces.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "support/catch.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

namespace {

using clock_type = std::chrono::steady_clock;

std::chrono::seconds case_limit() {
  if (const char* text = std::getenv("SWITCHBOARD_TEST_CASE_TIMEOUT")) {
    const long seconds = std::strtol(text, nullptr, 10);
    if (seconds > 0) return std::chrono::seconds(seconds);
  }
  return std::chrono::seconds(120);
}

class watchdog {
 public:
  static watchdog& instance() {
    // Never destroyed: the watching thread may still wait on it while the process exits.
    static watchdog* const dog = new watchdog;
    return *dog;
  }

  void case_started(const std::string& name) {
    {
      const std::lock_guard lock(mutex_);
      case_name_ = name;
      section_name_.clear();
      deadline_ = clock_type::now() + limit_;
      armed_ = true;
    }
    changed_.notify_one();
  }

  void section_started(const std::string& name) {
    {
      const std::lock_guard lock(mutex_);
      section_name_ = name;
      deadline_ = clock_type::now() + limit_;
    }
    changed_.notify_one();
  }

  void case_ended() {
    const std::lock_guard lock(mutex_);
    armed_ = false;
  }

 private:
  watchdog() : limit_(case_limit()) {
    // Detached: it must never keep a finished test executable alive, and it never touches state it does not own.
    std::thread([this] { watch(); }).detach();
  }

  [[noreturn]] void watch() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!armed_) {
        changed_.wait(lock);
        continue;
      }
      const auto deadline = deadline_;
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && armed_ && deadline_ == deadline) {
        std::fprintf(stderr, "\nwatchdog: test case \"%s\" (section \"%s\") ran longer than %lld s; aborting\n",
                     case_name_.c_str(), section_name_.c_str(), static_cast<long long>(limit_.count()));
        std::fflush(stderr);
        print_stacks();
        std::abort();
      }
    }
  }

  // Every thread's stack, from gdb attached to this process (bounded: gdb is killed after 60 s). Only the frames of
  // switchboard's and the tests' own code (not std::thread's wrappers of them), cut to 200 columns: CI shows the end
  // of a failed test's output only.
  static void print_stacks() {
    if (access("/usr/bin/gdb", X_OK) != 0) return;
    const std::string command =
        "timeout 60 /usr/bin/gdb -p " + std::to_string(getpid()) +
        " -batch -nx -ex 'set pagination off' -ex 'set print frame-arguments none' -ex 'thread apply all bt'"
        " </dev/null 2>/dev/null | grep -E '^Thread |switchboard|C_A_T_C_H|tests/'"
        " | grep -vE 'std::__invoke|_Invoker<.*>::(operator|_M_invoke)' | cut -c 1-200 1>&2";
    std::fprintf(stderr, "watchdog: where each thread is\n");
    std::fflush(stderr);
    (void)std::system(command.c_str());
  }

  const std::chrono::seconds limit_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string case_name_;
  std::string section_name_;
  clock_type::time_point deadline_{};
  bool armed_ = false;
};

#if __has_include(<catch2/catch_all.hpp>)
using listener_base = Catch::EventListenerBase;
#else
using listener_base = Catch::TestEventListenerBase;
#endif

struct watchdog_listener : listener_base {
  using listener_base::listener_base;

  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    listener_base::testCaseStarting(info);
    watchdog::instance().case_started(info.name);
  }
  void sectionStarting(Catch::SectionInfo const& info) override {
    listener_base::sectionStarting(info);
    watchdog::instance().section_started(info.name);
  }
  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    listener_base::testCaseEnded(stats);
    watchdog::instance().case_ended();
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(watchdog_listener)
