// switchboard/core/detail/deferred_reads.hpp
//
// Reads deferred to the end of the event loop's turn. A connection that has just handled a message (and queued
// its answer) waits for the peer's next one; a request-response peer (an echo client, redis-benchmark) sends it
// once it has the answer. Read at once, the socket is still empty, and waiting costs a system call whichever way
// it is done with Asio 1.22: a wait for readability starts with an `epoll_ctl`, a read with a `recv` that fails.
// Read at the end of the turn, once the answers of every connection served in it have been written, the next
// message has often arrived: one `recv` and no wait. WebSocket sessions read this way. The HTTP server reads at once:
// tried there, a quarter of the deferred reads under wrk found nothing (wrk sends its next request only after its
// own next epoll round), and CPU per request did not improve (benchmarks/load/README.md, "Where the CPU goes").
//
// One service per io_context, used from the thread that runs it (the runtime runs each context on one thread).
// A turn's readers are read by a posted sweep. Readers deferred after the sweep was posted are read by the next
// one: their answers were queued after it, and reading before an answer is written cannot find the reply to it.
//
// A peer that has sent nothing by then (one that answers slowly, or the only busy connection, whose turn is short)
// would make every deferred read a failed `recv` more. So a reader whose deferred read found nothing starts its
// next `reads_after_a_miss` reads at once: such a peer costs one failed `recv` in 17 reads.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace switchboard::detail {

class deferred_reads final : public asio::execution_context::service {
 public:
  /// What a deferred reader implements.
  class reader {
   public:
    /// Called once, on the context's thread, at the end of the turn: read what is there, or wait for it.
    virtual void read_deferred() = 0;

   protected:
    reader() = default;
    ~reader() = default;

    /// For `read_deferred` to call when the socket held nothing: the next reads are not deferred (see above).
    void deferred_read_missed() noexcept { undeferred_ = reads_after_a_miss; }

   private:
    friend class deferred_reads;
    std::uint8_t undeferred_ = 0;  // reads left to start at once
  };

  static constexpr std::uint8_t reads_after_a_miss = 16;

  /// Identifies the service to `asio::use_service`.
  inline static asio::execution_context::id id;

  explicit deferred_reads(asio::io_context& context) : asio::execution_context::service(context), context_(context) {}

  /// The service of `context`.
  static deferred_reads& of(asio::io_context& context) { return asio::use_service<deferred_reads>(context); }

  /// Defers `r`'s next read to the end of the current turn when `executor` is the plain executor of an io_context
  /// that this thread runs and `r`'s last deferred reads found something. False otherwise: read (or wait) now.
  static bool defer(const asio::any_io_executor& executor, std::shared_ptr<reader> r) {
    if (r->undeferred_ > 0) {
      --r->undeferred_;
      return false;
    }
    const auto* context = executor.target<asio::io_context::executor_type>();
    if (context == nullptr || !context->running_in_this_thread()) return false;
    of(context->context()).add(std::move(r));
    return true;
  }

  /// Calls `r->read_deferred()` at the end of the current turn (`r` is kept alive until then). On the context's
  /// thread only.
  void add(std::shared_ptr<reader> r) {
    due_.push_back(std::move(r));
    if (!sweep_posted_) post_sweep();
  }

 private:
  void post_sweep() {
    sweep_posted_ = true;
    readers_before_sweep_ = due_.size();
    asio::post(context_, [this] { sweep(); });
  }

  void sweep() {
    sweep_posted_ = false;
    running_.assign(std::make_move_iterator(due_.begin()),
                    std::make_move_iterator(due_.begin() + static_cast<std::ptrdiff_t>(readers_before_sweep_)));
    due_.erase(due_.begin(), due_.begin() + static_cast<std::ptrdiff_t>(readers_before_sweep_));
    if (!due_.empty()) post_sweep();  // deferred after this sweep was posted: their answers are still queued
    for (std::size_t i = 0; i < running_.size(); ++i) {
      try {
        std::shared_ptr<reader> r = std::move(running_[i]);
        r->read_deferred();
      } catch (...) {
        // A handler threw out of the read: the readers after it still read, in the next sweep.
        for (std::size_t j = i + 1; j < running_.size(); ++j) due_.push_back(std::move(running_[j]));
        running_.clear();
        if (!due_.empty() && !sweep_posted_) post_sweep();
        throw;
      }
    }
    running_.clear();
  }

  // The context is going away: its sockets close and nothing reads any more.
  void shutdown() override {
    due_.clear();
    running_.clear();
  }

  asio::io_context& context_;
  std::vector<std::shared_ptr<reader>> due_;      // deferred, in order
  std::vector<std::shared_ptr<reader>> running_;  // the sweep's, while it runs
  std::size_t readers_before_sweep_ = 0;           // the first readers of due_, whose sweep is posted
  bool sweep_posted_ = false;
};

}  // namespace switchboard::detail
