// switchboard/http/detail/output_queue.hpp
//
// Bytes waiting to be written on a connection: small pieces (heads, small bodies, chunk headers) are copied into
// one string; large bodies and shared payloads are kept as their own pieces and written with scatter/gather, not
// copied. One write sends everything queued (the responses to a batch of pipelined requests go out together).
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
      : pieces_(rebound<piece>(allocator)), buffers_(rebound<asio::const_buffer>(allocator)) {}

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

  bool empty() const noexcept {
    for (const auto& p : pieces_) {
      if (p.size() != 0) return false;
    }
    return true;
  }
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const auto& p : pieces_) n += p.size();
    return n;
  }

  /// Buffers for the unwritten bytes (valid until the queue changes).
  const std::vector<asio::const_buffer, rebound<asio::const_buffer>>& buffers() {
    buffers_.clear();
    for (const auto& p : pieces_) {
      const std::string_view v = p.view();
      if (!v.empty()) buffers_.emplace_back(v.data(), v.size());
    }
    return buffers_;
  }

  /// Drops the first `n` bytes (after a partial write).
  void consume(std::size_t n) {
    std::size_t i = 0;
    while (n > 0 && i < pieces_.size()) {
      piece& p = pieces_[i];
      const std::size_t left = p.size();
      if (n >= left) {
        n -= left;
        ++i;
      } else {
        p.offset += n;
        n = 0;
      }
    }
    if (i == pieces_.size()) return clear();  // everything written: keep the first string's capacity
    pieces_.erase(pieces_.begin(), pieces_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  /// Empties the queue, keeping the first string's capacity for the next responses.
  void clear() {
    if (pieces_.size() > 1) pieces_.erase(pieces_.begin() + 1, pieces_.end());
    if (!pieces_.empty()) {
      pieces_[0].text.clear();
      pieces_[0].shared = {};
      pieces_[0].offset = 0;
    }
  }
  /// Frees all memory (a connection going idle).
  void release() {
    pieces_.clear();
    pieces_.shrink_to_fit();
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
  std::vector<piece, rebound<piece>> pieces_;
  std::vector<asio::const_buffer, rebound<asio::const_buffer>> buffers_;
};

using output_queue = basic_output_queue<>;

}  // namespace switchboard::http::detail
