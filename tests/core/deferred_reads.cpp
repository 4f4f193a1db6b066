// Reads deferred to the end of the event loop's turn: a reader runs after the handlers queued before it was
// deferred and after the answers queued by the handlers of the same turn, once; a throwing reader loses none of the
// others; a context that goes away lets go of its readers.
#include <switchboard/core/detail/deferred_reads.hpp>

#include "support/catch.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using switchboard::detail::deferred_reads;

namespace {

// A reader that notes its name in `log` when it reads, and throws if told to.
class logging_reader final : public deferred_reads::reader {
 public:
  logging_reader(std::vector<std::string>& log, std::string name, bool throws = false)
      : log_(log), name_(std::move(name)), throws_(throws) {}
  void read_deferred() override {
    log_.push_back(name_);
    if (throws_) throw std::runtime_error(name_ + " throws");
  }

 private:
  std::vector<std::string>& log_;
  std::string name_;
  bool throws_;
};

}  // namespace

TEST_CASE("deferred reads: after the answers of the turn, once each", "[core][deferred_reads]") {
  asio::io_context ctx;
  deferred_reads& reads = deferred_reads::of(ctx);
  std::vector<std::string> log;
  // Two connections are ready in the same turn; each queues its answer, then defers its next read.
  for (const std::string name : {"a", "b"}) {
    asio::post(ctx, [&, name] {
      log.push_back("handle " + name);
      asio::post(ctx, [&, name] { log.push_back("answer " + name); });
      reads.add(std::make_shared<logging_reader>(log, "read " + name));
    });
  }
  CHECK(ctx.run() > 0);
  // b's read was deferred after the sweep was posted (by a): it waits for the next sweep, behind b's answer.
  CHECK(log == std::vector<std::string>{"handle a", "handle b", "answer a", "read a", "answer b", "read b"});
}

TEST_CASE("deferred reads: a reader deferred again while reading reads in a later turn", "[core][deferred_reads]") {
  asio::io_context ctx;
  deferred_reads& reads = deferred_reads::of(ctx);
  std::vector<std::string> log;
  struct again final : deferred_reads::reader {
    std::vector<std::string>* log;
    deferred_reads* reads;
    std::weak_ptr<again> self;
    int left = 3;
    void read_deferred() override {
      log->push_back("read " + std::to_string(left));
      if (--left > 0) reads->add(self.lock());
    }
  };
  auto r = std::make_shared<again>();
  r->log = &log;
  r->reads = &reads;
  r->self = r;
  asio::post(ctx, [&] { reads.add(r); });
  CHECK(ctx.run() > 0);
  CHECK(log == std::vector<std::string>{"read 3", "read 2", "read 1"});
}

TEST_CASE("deferred reads: a reader that throws loses none of the others", "[core][deferred_reads]") {
  asio::io_context ctx;
  deferred_reads& reads = deferred_reads::of(ctx);
  std::vector<std::string> log;
  asio::post(ctx, [&] {
    reads.add(std::make_shared<logging_reader>(log, "a"));
    reads.add(std::make_shared<logging_reader>(log, "b", true));
    reads.add(std::make_shared<logging_reader>(log, "c"));
  });
  CHECK_THROWS_WITH(ctx.run(), "b throws");
  CHECK(log == std::vector<std::string>{"a", "b"});
  ctx.restart();
  ctx.run();
  CHECK(log == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("deferred reads: a context that goes away lets go of its readers", "[core][deferred_reads]") {
  std::weak_ptr<logging_reader> watched;
  std::vector<std::string> log;
  {
    asio::io_context ctx;
    auto r = std::make_shared<logging_reader>(log, "never");
    watched = r;
    deferred_reads::of(ctx).add(std::move(r));  // its sweep is posted and never run
    CHECK_FALSE(watched.expired());
  }
  CHECK(watched.expired());
  CHECK(log.empty());
}

TEST_CASE("deferred reads: only on the context's own thread, and not for a while after a miss",
          "[core][deferred_reads]") {
  asio::io_context ctx;
  struct missing final : deferred_reads::reader {
    int reads = 0;
    void read_deferred() override {
      ++reads;
      deferred_read_missed();  // as a reader whose socket held nothing
    }
  };
  auto r = std::make_shared<missing>();
  const asio::any_io_executor executor = ctx.get_executor();
  CHECK_FALSE(deferred_reads::defer(executor, r));  // this thread is not running ctx: read now
  std::vector<bool> deferred;
  asio::post(ctx, [&] { deferred.push_back(deferred_reads::defer(executor, r)); });
  ctx.run();
  CHECK(deferred == std::vector<bool>{true});
  CHECK(r->reads == 1);
  // It missed: the next reads_after_a_miss are started at once, then deferral comes back.
  asio::post(ctx, [&] {
    for (int i = 0; i <= deferred_reads::reads_after_a_miss; ++i) deferred.push_back(deferred_reads::defer(executor, r));
  });
  ctx.restart();
  ctx.run();
  REQUIRE(deferred.size() == 2u + deferred_reads::reads_after_a_miss);
  CHECK(std::count(deferred.begin() + 1, deferred.end() - 1, true) == 0);
  CHECK(deferred.back());
  CHECK(r->reads == 2);
}
