// switchboard/http/detail/output_queue.hpp
//
// Bytes waiting to be written on a connection: small pieces (heads, small bodies, chunk headers) are copied into
// one string; large bodies and shared payloads are kept as their own pieces and written with scatter/gather, not
// copied. One write sends everything queued (the responses to a batch of pipelined requests go out together).
// A write in flight owns what it sends (`start_write`): bytes queued meanwhile (a deferred response, a streamed
// chunk) go into other pieces and wait for the next write, so that the buffers it is writing stay valid.
//
// The allocator serves the queue's own containers: the HTTP server's exchange gives it an arena in its page unit
// (core/detail/arena.hpp), so that a connection's output state goes back to the system with the unit.
#pragma once

#include <switchboard/core/shared_bytes.hpp>

#include <asio/buffer.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::http::detail {

template <class Allocator = std::allocator<char>>
class basic_output_queue {
  template <class T>
  using rebound = typename std::allocator_traits<Allocator>::template rebind_alloc<T>;

 public:
  using text_type = std::basic_string<char, std::char_traits<char>, Allocator>;

  /// Bodies at least this large are not copied into the small-piece string.
  static constexpr std::size_t copy_threshold = 16 * 1024;

  explicit basic_output_queue(const Allocator& allocator = Allocator())
      : pieces_(rebound<piece>(allocator)), sending_(rebound<piece>(allocator)),
        buffers_(rebound<asio::const_buffer>(allocator)) {}

  /// The string to append small pieces to.
  text_type& text() {
    if (pieces_.empty() || pieces_.back().shared.size() != 0) pieces_.emplace_back(pieces_.get_allocator());
    return pieces_.back().text;
  }
  void append(std::string_view s) { text().append(s); }
  /// A large owned body: moved in, not copied.
  void append_owned(std::string body) {
    if (body.size() < copy_threshold) {
      text().append(body);
      return;
    }
    pieces_.emplace_back(pieces_.get_allocator()).shared = shared_bytes(std::move(body));
  }
  /// Shared bytes: referenced, not copied, unless smaller than 512 bytes (copied into the small-piece string, which
  /// one write sends whole). Taken by reference, so that a small piece touches no reference count (a broker fans
  /// one frame out to many connections).
  void append_shared(const shared_bytes& bytes) {
    if (bytes.size() < 512) {
      text().append(bytes.view());
      return;
    }
    pieces_.emplace_back(pieces_.get_allocator()).shared = bytes;
  }

  /// True when no byte waits: none queued, none of a write in flight left.
  bool empty() const noexcept { return size_of(pieces_) == 0 && size_of(sending_) == 0; }
  /// Bytes queued and not yet written, the write in flight's included.
  std::size_t size() const noexcept { return size_of(pieces_) + size_of(sending_); }

  /// Starts a write of everything queued (once the previous write is finished): the write owns those bytes until
  /// `finish_write`, and what is queued meanwhile waits for the next one. Returns the buffers to write.
  const std::vector<asio::const_buffer, rebound<asio::const_buffer>>& start_write() {
    if (size_of(sending_) == 0) {
      pieces_.swap(sending_);
      clear(pieces_);  // the previous write's pieces: their first string keeps its capacity for the next responses
    }
    return sending_buffers();
  }
  /// Buffers for what the write in flight has not sent yet (valid until `consume_sent` or `finish_write`).
  const std::vector<asio::const_buffer, rebound<asio::const_buffer>>& sending_buffers() {
    buffers_.clear();
    for (const auto& p : sending_) {
      const std::string_view v = p.view();
      if (!v.empty()) buffers_.emplace_back(v.data(), v.size());
    }
    return buffers_;
  }
  /// Drops the first `n` bytes of the write in flight (after a partial write).
  void consume_sent(std::size_t n) {
    std::size_t i = 0;
    while (n > 0 && i < sending_.size()) {
      piece& p = sending_[i];
      const std::size_t left = p.size();
      if (n >= left) {
        n -= left;
        ++i;
      } else {
        p.offset += n;
        n = 0;
      }
    }
    if (i == sending_.size()) return clear(sending_);  // everything written: keep the first string's capacity
    sending_.erase(sending_.begin(), sending_.begin() + static_cast<std::ptrdiff_t>(i));
  }
  /// True when the write in flight has sent everything it took.
  bool sent_all() const noexcept { return size_of(sending_) == 0; }
  /// The write in flight is over (its bytes went out, or the connection is closing).
  void finish_write() { clear(sending_); }

  /// Empties the queue, keeping the first string's capacity for the next responses.
  void clear() {
    clear(pieces_);
    clear(sending_);
  }
  /// Frees all memory (a connection going idle).
  void release() {
    pieces_.clear();
    pieces_.shrink_to_fit();
    sending_.clear();
    sending_.shrink_to_fit();
    buffers_.clear();
    buffers_.shrink_to_fit();
  }

 private:
  // Small pieces are copied into `text`; a large or shared piece is referenced by `shared`.
  struct piece {
    explicit piece(const rebound<piece>& allocator) : text(Allocator(allocator)) {}
    text_type text;
    shared_bytes shared;
    std::size_t offset = 0;
    std::string_view view() const noexcept {
      const std::string_view all = shared.size() != 0 ? shared.view() : std::string_view(text);
      return all.substr(offset);
    }
    std::size_t size() const noexcept { return view().size(); }
  };
  using piece_list = std::vector<piece, rebound<piece>>;

  static std::size_t size_of(const piece_list& list) noexcept {
    std::size_t n = 0;
    for (const auto& p : list) n += p.size();
    return n;
  }
  static void clear(piece_list& list) {
    if (list.size() > 1) list.erase(list.begin() + 1, list.end());
    if (!list.empty()) {
      list[0].text.clear();
      list[0].shared = {};
      list[0].offset = 0;
    }
  }

  piece_list pieces_;   // queued for the next write
  piece_list sending_;  // taken by the write in flight
  std::vector<asio::const_buffer, rebound<asio::const_buffer>> buffers_;
};

using output_queue = basic_output_queue<>;

}  // namespace switchboard::http::detail
