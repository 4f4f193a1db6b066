// switchboard/ws/frame_writer.hpp
//
// Encoding frames (RFC 6455 §5.2): headers in the minimal length form, payloads masked by clients with a fresh
// unpredictable key per frame (§5.3) and never by servers, and the control frames (ping, pong, close) with their
// payload rules (§5.5). Everything is written into caller buffers sized with `frame_size`; nothing allocates
// except `prepared_frame`, which encodes a server frame once so that the same bytes can be queued to any number
// of connections (a broadcast copies no payload per client).
//
// Text payloads are not checked for UTF-8 here (that would cost a pass over every outgoing message); a peer
// fails the connection with 1007 on invalid text, so senders of untrusted text check it with `is_valid_utf8`.
//
// Misuse is a programmer error and throws: an output span too small (`std::length_error`), a control payload
// over 125 bytes, a fragmented or compressed control frame, or a close payload that breaks §5.5.1 (one byte, a
// code that may not be sent, a reason that is not UTF-8), whichever function writes it (`std::invalid_argument`).
#pragma once

#include <switchboard/ws/detail/close_payload.hpp>
#include <switchboard/ws/frame.hpp>
#include <switchboard/ws/mask.hpp>
#include <switchboard/core/utf8.hpp>

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace switchboard::ws {

/// Writes `h` into the front of `out` and returns its size, `header_size(h.payload_size, h.masked)` bytes.
/// Throws `std::length_error` if `out` is smaller, `std::invalid_argument` if the payload size needs the top
/// bit of the 64-bit length (§5.2).
inline std::size_t encode_header(const frame_header& h, std::span<char> out) {
  if (h.payload_size >> 63) throw std::invalid_argument("switchboard::ws: payload size too large for a frame");
  const std::size_t size = header_size(h.payload_size, h.masked);
  if (out.size() < size) throw std::length_error("switchboard::ws: output buffer too small for the frame header");
  out[0] = static_cast<char>((h.fin ? 0x80 : 0) | (h.rsv1 ? 0x40 : 0) | (h.rsv2 ? 0x20 : 0) | (h.rsv3 ? 0x10 : 0) |
                             static_cast<std::uint8_t>(h.op));
  const int mask_bit = h.masked ? 0x80 : 0;
  std::size_t at = 2;
  if (h.payload_size < 126) {
    out[1] = static_cast<char>(mask_bit | static_cast<int>(h.payload_size));
  } else {
    const std::size_t length_bytes = h.payload_size <= 0xFFFF ? 2 : 8;
    out[1] = static_cast<char>(mask_bit | (length_bytes == 2 ? 126 : 127));
    for (std::size_t i = 0; i < length_bytes; ++i) {
      out[at + i] = static_cast<char>(h.payload_size >> (8 * (length_bytes - 1 - i)));
    }
    at += length_bytes;
  }
  if (h.masked) std::memcpy(out.data() + at, h.key.data(), 4);
  return size;
}

/// A source of masking keys: each call returns a fresh key.
template <class T>
concept mask_source = requires(T& source) {
  { source() } -> std::convertible_to<mask_key>;
};

/// Masking keys from OpenSSL's CSPRNG (RFC 6455 §5.3: "derived from a strong source of entropy", so that a
/// page's script cannot predict what its frames look like on the wire). Keys are drawn 64 at a time to make
/// the per-frame cost a copy. Throws `std::runtime_error` if OpenSSL cannot produce random bytes. The batch is
/// allocated at the first key: a server, which never masks, carries a pointer, not 256 bytes per connection.
class random_mask_source {
 public:
  mask_key operator()() {
    if (!batch_) batch_ = std::make_unique<batch>();
    if (next_ == batch_size) {
      if (RAND_bytes(reinterpret_cast<unsigned char*>(batch_->data()), static_cast<int>(sizeof(batch))) != 1) {
        throw std::runtime_error("switchboard::ws: RAND_bytes failed");
      }
      next_ = 0;
    }
    return (*batch_)[next_++];
  }

 private:
  static constexpr std::size_t batch_size = 64;
  using batch = std::array<mask_key, batch_size>;
  std::unique_ptr<batch> batch_;
  std::size_t next_ = batch_size;
};

/// Encodes the frames one end of a connection sends: masked with keys from `MaskSource` for a client, unmasked
/// for a server. Not thread-safe (the mask source has state); one per connection.
template <mask_source MaskSource>
class basic_frame_writer {
 public:
  /// A writer for frames that `r` sends.
  explicit basic_frame_writer(role r, MaskSource source = MaskSource{}) : role_(r), source_(std::move(source)) {}

  /// Bytes needed to write a frame of `payload_size` payload bytes (header included).
  std::size_t frame_size(std::uint64_t payload_size) const noexcept {
    return header_size(payload_size, role_ == role::client) + static_cast<std::size_t>(payload_size);
  }

  /// The header of a frame with `payload_size` bytes, with a fresh masking key for a client. Use it with
  /// `encode_header` to send a large payload from its own buffer (a gather write): a client must then XOR the
  /// payload with the header's key (`apply_mask`) on its way out. `fin` false starts or continues a fragmented
  /// message (§5.4); `compressed` sets RSV1 on the first frame of a permessage-deflate message (RFC 7692 §6).
  /// The payload is not seen here, so a close frame's is not checked: write close frames with `write_close`.
  frame_header make_header(opcode op, std::uint64_t payload_size, bool fin = true, bool compressed = false) {
    if (is_control(op) && (!fin || compressed || payload_size > max_control_payload)) {
      throw std::invalid_argument("switchboard::ws: control frames are unfragmented, uncompressed, <= 125 bytes");
    }
    if (op == opcode::continuation && compressed) {
      throw std::invalid_argument("switchboard::ws: only the first frame of a message carries RSV1");
    }
    frame_header h;
    h.fin = fin;
    h.rsv1 = compressed;
    h.op = op;
    h.payload_size = payload_size;
    if (role_ == role::client) {
      h.masked = true;
      h.key = source_();
    }
    return h;
  }

  /// Writes a whole frame (header, then the payload, masked for a client) into the front of `out` and returns
  /// its size, `frame_size(payload.size())`. See `make_header` for `fin` and `compressed`. A close frame's
  /// payload must follow §5.5.1 (see `write_close`).
  std::size_t write_frame(std::span<char> out, opcode op, std::string_view payload, bool fin = true,
                          bool compressed = false) {
    const frame_header h = make_header(op, payload.size(), fin, compressed);
    if (op == opcode::close) {
      if (auto e = detail::close_payload_error(payload)) {
        throw std::invalid_argument("switchboard::ws: " + make_error_code(*e).message());
      }
    }
    if (out.size() < frame_size(payload.size())) {
      throw std::length_error("switchboard::ws: output buffer too small for the frame");
    }
    const std::size_t at = encode_header(h, out);
    std::copy_n(payload.data(), payload.size(), out.data() + at);
    if (h.masked) apply_mask(out.subspan(at, payload.size()), h.key);
    return at + payload.size();
  }

  /// A ping (§5.5.2) with `payload` (at most 125 bytes), which the peer echoes in a pong.
  std::size_t write_ping(std::span<char> out, std::string_view payload = {}) {
    return write_frame(out, opcode::ping, payload);
  }

  /// A pong (§5.5.3): the answer to a ping, with the ping's payload.
  std::size_t write_pong(std::span<char> out, std::string_view payload = {}) {
    return write_frame(out, opcode::pong, payload);
  }

  /// A close frame with no payload (§5.5.1): the peer reports 1005 (no status).
  std::size_t write_close(std::span<char> out) { return write_frame(out, opcode::close, {}); }

  /// A close frame with `code` and a UTF-8 `reason` of at most 123 bytes (§5.5.1). `code` must be valid on the
  /// wire (`is_valid_close_code`: 1005, 1006 and 1015 are not). Throws `std::invalid_argument` otherwise.
  std::size_t write_close(std::span<char> out, close_code code, std::string_view reason = {}) {
    const auto value = static_cast<std::uint16_t>(code);
    if (reason.size() > max_close_reason) throw std::invalid_argument("switchboard::ws: close reason over 123 bytes");
    std::array<char, max_control_payload> payload;
    payload[0] = static_cast<char>(value >> 8);
    payload[1] = static_cast<char>(value & 0xFF);
    std::copy_n(reason.data(), reason.size(), payload.data() + 2);
    return write_frame(out, opcode::close, std::string_view(payload.data(), 2 + reason.size()));  // checks the rest
  }

 private:
  role role_;
  MaskSource source_;
};

/// A frame writer drawing client masking keys from OpenSSL.
using frame_writer = basic_frame_writer<random_mask_source>;

/// A complete, unmasked (server-to-client) frame encoded once and shared, immutable and reference-counted, by
/// every connection it is queued to. Copying it copies a pointer. `size()` lets bounded queues count its bytes.
///
/// Only server frames can be shared: a client masks every frame with its own key. A compressed payload can be
/// shared only with connections whose compressor would produce the same bytes: those that agreed
/// `server_no_context_takeover` and the same window size (compress once with such a compressor).
class prepared_frame {
 public:
  /// An empty frame (no bytes); assign one from `make`.
  prepared_frame() = default;

  /// Encodes one final frame of type `op` carrying `payload` (already compressed if `compressed`, which sets
  /// RSV1). Throws as `basic_frame_writer::write_frame` does for invalid combinations and close payloads.
  static prepared_frame make(opcode op, std::string_view payload, bool compressed = false) {
    basic_frame_writer<no_masks> writer(role::server);
    const std::size_t size = writer.frame_size(payload.size());
    std::shared_ptr<char[]> bytes = std::make_shared_for_overwrite<char[]>(size);
    prepared_frame f;
    f.size_ = writer.write_frame(std::span<char>(bytes.get(), size), op, payload, true, compressed);
    f.bytes_ = std::move(bytes);
    return f;
  }

  /// The encoded frame, ready to write to the socket.
  std::string_view bytes() const noexcept { return {bytes_.get(), size_}; }

  /// Its size in bytes.
  std::size_t size() const noexcept { return size_; }

 private:
  // A server never masks, so its writer never asks for a key.
  struct no_masks {
    mask_key operator()() const noexcept { return {}; }
  };

  std::shared_ptr<const char[]> bytes_;
  std::size_t size_ = 0;
};

}  // namespace switchboard::ws
