// switchboard/ws/deflate.hpp
//
// permessage-deflate (RFC 7692): the negotiation of its four parameters in the opening handshake, a compressor
// for outgoing messages and a decompressor for incoming ones, over zlib (raw DEFLATE, RFC 1951). Off by default
// (`deflate_options::enabled`): compression costs CPU and, with context takeover, about 300 KiB of zlib state
// per connection (a compressor with its 32 KiB window and hash chains, and a 32 KiB inflate window).
//
// How a message travels (RFC 7692 §7.2): the sender compresses the whole message, ends it with a sync flush
// (an empty stored block, 00 00 FF FF) and removes those 4 bytes; the first frame of the message has RSV1 set.
// The receiver appends 00 00 FF FF back and inflates. With "context takeover" (the default) both ends keep the
// LZ77 window from one message to the next, which compresses a stream of similar messages (JSON events) far
// better; `*_no_context_takeover` makes that side start every message afresh.
//
// Security: compression ratio is a lever for an attacker (a 1 KiB frame can inflate to megabytes), so the
// decompressor enforces the message size limit on its *output* and stops as soon as it would be exceeded. And
// compressing secrets next to attacker-chosen text in one context leaks them through the compressed size
// (CRIME/BREACH); do not enable compression for such traffic, or disable context takeover.
#pragma once

#include <switchboard/ws/error.hpp>
#include <switchboard/ws/extensions.hpp>
#include <switchboard/ws/frame.hpp>

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace switchboard::ws {

/// The permessage-deflate parameters in force on one connection, as agreed in the handshake (RFC 7692 §7.1), and
/// how hard this end compresses (its `deflate_options`' zlib settings, which the handshake does not carry).
/// Window sizes are base-2 logarithms of the LZ77 window in bytes (8 = 256 bytes ... 15 = 32 KiB).
struct deflate_params {
  bool server_no_context_takeover = false;  ///< the server resets its compressor after every message
  bool client_no_context_takeover = false;  ///< the client resets its compressor after every message
  int server_max_window_bits = 15;          ///< the largest window the server compresses with
  int client_max_window_bits = 15;          ///< the largest window the client compresses with
  int compression_level = 6;                ///< this end's zlib level, 0-9 (not negotiated)
  int memory_level = 8;                     ///< this end's zlib memLevel, 1-9 (not negotiated)
};

/// What one endpoint is willing to negotiate, and how hard it compresses. The same struct serves a server (what
/// it accepts) and a client (what it offers).
struct deflate_options {
  /// Offer (client) or accept (server) permessage-deflate at all. Off by default.
  bool enabled = false;
  /// Server: reset its own compressor after every message even if the client does not ask (saves nothing in
  /// memory, but makes its compressed messages independent, so that one compressed frame can be shared by all
  /// clients). Client: ask the server to do so. Always agreed when the client asks.
  bool server_no_context_takeover = false;
  /// Server: ask the client to reset its compressor after every message. Client: announce that it will. Agreed
  /// whenever either side asks.
  bool client_no_context_takeover = false;
  /// Server: the largest window it compresses with (9-15; the client may ask for less). Client: the largest window
  /// it asks the server to use (8-15; 15 sends no request).
  int server_max_window_bits = 15;
  /// Server: the largest window it lets the client use (8-15); below 15 only offers that carry
  /// `client_max_window_bits` can honour it (RFC 7692 §7.1.2.2), so other offers are declined. Client: the
  /// largest window it compresses with (9-15), announced in the offer.
  int client_max_window_bits = 15;
  /// zlib compression level: 0 (store) to 9 (smallest); 6 is zlib's default balance.
  int compression_level = 6;
  /// zlib memLevel: 1 (least memory, slower) to 9; 8 is zlib's default.
  int memory_level = 8;
};

/// A server's answer to an offer: the parameters in force and the `Sec-WebSocket-Extensions` value to send.
struct deflate_agreement {
  deflate_params params{};  ///< what both ends now use
  std::string response{};   ///< the value of the response's Sec-WebSocket-Extensions header
};

namespace detail {

inline constexpr std::string_view deflate_name = "permessage-deflate";

// window-bits = 1*DIGIT, "a decimal integer value without leading zeroes between 8 to 15, inclusive"
// (RFC 7692 §7.1.2.1, §7.1.2.2).
inline std::optional<int> parse_window_bits(std::string_view v) noexcept {
  if (v.size() == 1 && v[0] >= '8' && v[0] <= '9') return v[0] - '0';
  if (v.size() == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5') return 10 + (v[1] - '0');
  return std::nullopt;
}

// The parameters of one permessage-deflate element, checked against RFC 7692 §7: known names only, each at
// most once, no value on the *_no_context_takeover flags, a valid value on server_max_window_bits, and on
// client_max_window_bits when it has one (a value is required in a response).
struct deflate_element {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::optional<int> server_max_window_bits;
  bool has_client_max_window_bits = false;
  std::optional<int> client_max_window_bits;
};

inline std::optional<deflate_element> read_deflate_element(const extension& ext, bool is_response) {
  deflate_element e;
  bool seen_snct = false, seen_cnct = false, seen_smwb = false, seen_cmwb = false;
  auto once = [](bool& seen) { return !std::exchange(seen, true); };
  for (const extension_param& p : ext.params) {
    if (iequals(p.name, "server_no_context_takeover")) {
      if (!once(seen_snct) || p.value) return std::nullopt;
      e.server_no_context_takeover = true;
    } else if (iequals(p.name, "client_no_context_takeover")) {
      if (!once(seen_cnct) || p.value) return std::nullopt;
      e.client_no_context_takeover = true;
    } else if (iequals(p.name, "server_max_window_bits")) {
      if (!once(seen_smwb) || !p.value) return std::nullopt;
      e.server_max_window_bits = parse_window_bits(*p.value);
      if (!e.server_max_window_bits) return std::nullopt;
    } else if (iequals(p.name, "client_max_window_bits")) {
      if (!once(seen_cmwb)) return std::nullopt;
      e.has_client_max_window_bits = true;
      if (p.value) {
        e.client_max_window_bits = parse_window_bits(*p.value);
        if (!e.client_max_window_bits) return std::nullopt;
      } else if (is_response) {
        return std::nullopt;
      }
    } else {
      return std::nullopt;  // a parameter not defined for permessage-deflate
    }
  }
  return e;
}

inline void check_window_bits(int bits, int lowest, const char* field) {
  if (bits < lowest || bits > 15) {
    throw std::invalid_argument(std::string("switchboard::ws::deflate_options: ") + field + " out of range");
  }
}

inline void check_options(const deflate_options& o, role r) {
  // zlib's raw deflate cannot use a 256-byte window (deflateInit2 rejects windowBits -8), so the window an end
  // compresses with is at least 9; the window it asks the peer for may be 8.
  check_window_bits(o.server_max_window_bits, r == role::server ? 9 : 8, "server_max_window_bits");
  check_window_bits(o.client_max_window_bits, r == role::client ? 9 : 8, "client_max_window_bits");
  if (o.compression_level < 0 || o.compression_level > 9) {
    throw std::invalid_argument("switchboard::ws::deflate_options: compression_level out of range");
  }
  if (o.memory_level < 1 || o.memory_level > 9) {
    throw std::invalid_argument("switchboard::ws::deflate_options: memory_level out of range");
  }
}

// zlib counts its input and output in `uInt`, 32 bits, so a buffer of 4 GiB or more is handed to it in pieces of
// at most this size (a cast would silently cut the count).
inline constexpr std::size_t max_zlib_piece = std::size_t{1} << 30;

}  // namespace detail

/// Server side (RFC 7692 §5, §7.1): accepts the first permessage-deflate offer in `offers` (the client's order of
/// preference) that is valid and that `options` can honour, or returns nullopt to decline them all (the response
/// then carries no permessage-deflate and messages go uncompressed). Offers are declined, never failed, when they
/// have an unknown, duplicate or ill-valued parameter (§7: the server "MUST decline" them), or ask for a server
/// window of 8 bits, which zlib cannot produce. Throws `std::invalid_argument` if `options` is out of range.
inline std::optional<deflate_agreement> negotiate_deflate(std::span<const extension> offers,
                                                          const deflate_options& options) {
  detail::check_options(options, role::server);
  if (!options.enabled) return std::nullopt;
  for (const extension& offer : offers) {
    if (!detail::iequals(offer.name, detail::deflate_name)) continue;
    const auto e = detail::read_deflate_element(offer, /*is_response=*/false);
    if (!e) continue;
    deflate_agreement a;
    deflate_params& p = a.params;
    p.compression_level = options.compression_level;
    p.memory_level = options.memory_level;
    // §7.1.1.1: accepted by echoing it; a server may also impose it unasked.
    p.server_no_context_takeover = e->server_no_context_takeover || options.server_no_context_takeover;
    // §7.1.1.2: a server may include it in any response; echo the client's announcement so both rely on it.
    p.client_no_context_takeover = e->client_no_context_takeover || options.client_no_context_takeover;
    // §7.1.2.1: answer a requested server window with the same or a smaller value.
    p.server_max_window_bits = std::min(e->server_max_window_bits.value_or(15), options.server_max_window_bits);
    if (p.server_max_window_bits < 9) continue;
    // §7.1.2.2: limit the client's window only if it said it supports the parameter.
    if (e->has_client_max_window_bits) {
      p.client_max_window_bits = std::min(e->client_max_window_bits.value_or(15), options.client_max_window_bits);
    } else if (options.client_max_window_bits < 15) {
      continue;
    }
    a.response = std::string(detail::deflate_name);
    if (p.server_no_context_takeover) a.response += "; server_no_context_takeover";
    if (p.client_no_context_takeover) a.response += "; client_no_context_takeover";
    if (e->server_max_window_bits || p.server_max_window_bits < 15) {
      a.response.append("; server_max_window_bits=").append(std::to_string(p.server_max_window_bits));
    }
    if (p.client_max_window_bits < 15) {
      a.response.append("; client_max_window_bits=").append(std::to_string(p.client_max_window_bits));
    }
    return a;
  }
  return std::nullopt;
}

/// Client side: the `Sec-WebSocket-Extensions` value that offers permessage-deflate as `options` describes, or an
/// empty string when `options.enabled` is false. It always carries `client_max_window_bits` (with a value when
/// below 15), announcing that the client can honour a server's limit. Throws `std::invalid_argument` if
/// `options` is out of range.
inline std::string deflate_offer(const deflate_options& options) {
  detail::check_options(options, role::client);
  if (!options.enabled) return {};
  std::string offer(detail::deflate_name);
  if (options.server_no_context_takeover) offer += "; server_no_context_takeover";
  if (options.client_no_context_takeover) offer += "; client_no_context_takeover";
  if (options.server_max_window_bits < 15) {
    offer.append("; server_max_window_bits=").append(std::to_string(options.server_max_window_bits));
  }
  offer += "; client_max_window_bits";
  if (options.client_max_window_bits < 15) offer.append("=").append(std::to_string(options.client_max_window_bits));
  return offer;
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` response (parsed, possibly empty) against the
/// offer `deflate_offer(options)` made. On success `agreed` holds the parameters in force, or nullopt if the
/// server declined. Returns `error::unexpected_extension` (the client must fail the connection, RFC 6455 §9.1,
/// RFC 7692 §7.1) when the response names another extension, answers permessage-deflate twice or without having
/// been offered it, has an invalid parameter, grants a larger server window than asked, limits the client's
/// window to 8 bits (which zlib cannot compress with), or omits a `server_no_context_takeover` the client asked for.
/// A client window limit above the one the offer announced is accepted: the client keeps to its own.
inline std::error_code accept_deflate_response(std::span<const extension> response, const deflate_options& options,
                                               std::optional<deflate_params>& agreed) {
  agreed.reset();
  // Not offered: any answer is unexpected, and the other options (not sent, so not checked) do not matter.
  if (!options.enabled) return response.empty() ? std::error_code() : make_error_code(error::unexpected_extension);
  detail::check_options(options, role::client);
  for (const extension& ext : response) {
    if (!detail::iequals(ext.name, detail::deflate_name) || !options.enabled || agreed) {
      return error::unexpected_extension;
    }
    const auto e = detail::read_deflate_element(ext, /*is_response=*/true);
    if (!e) return error::unexpected_extension;
    if (options.server_no_context_takeover && !e->server_no_context_takeover) return error::unexpected_extension;
    deflate_params p;
    p.compression_level = options.compression_level;
    p.memory_level = options.memory_level;
    p.server_no_context_takeover = e->server_no_context_takeover;
    p.client_no_context_takeover = e->client_no_context_takeover || options.client_no_context_takeover;
    p.server_max_window_bits = e->server_max_window_bits.value_or(15);
    if (p.server_max_window_bits > options.server_max_window_bits) return error::unexpected_extension;
    // §7.1.2.2: a server may ignore the value the offer gave client_max_window_bits and answer a larger one; the
    // offer told it that the client will not use a window larger than that value whatever the answer, so the client
    // goes on with the smaller of the two (failing here would refuse a conforming server).
    p.client_max_window_bits = std::min(e->client_max_window_bits.value_or(15), options.client_max_window_bits);
    if (p.client_max_window_bits < 9) return error::unexpected_extension;
    agreed = p;
  }
  return {};
}

/// Compresses outgoing messages for one connection (RFC 7692 §7.2.1). Not thread-safe: one per connection,
/// used by whoever serialises that connection's writes. Messages must be compressed in the order they are sent.
class deflate_compressor {
 public:
  /// A compressor for the messages `r` sends under `params`, at its zlib `compression_level` (0-9) and
  /// `memory_level` (1-9). Throws `std::invalid_argument` for a window below 9 bits or out-of-range levels,
  /// `std::bad_alloc` if zlib cannot allocate its state.
  deflate_compressor(role r, const deflate_params& params)
      : no_context_takeover_(r == role::server ? params.server_no_context_takeover
                                               : params.client_no_context_takeover) {
    const int bits = r == role::server ? params.server_max_window_bits : params.client_max_window_bits;
    detail::check_window_bits(bits, 9, "compressor window bits");
    const int level = params.compression_level, memory_level = params.memory_level;
    if (level < 0 || level > 9 || memory_level < 1 || memory_level > 9) {
      throw std::invalid_argument("switchboard::ws::deflate_compressor: level out of range");
    }
    // A negative windowBits selects raw DEFLATE, without the zlib header and checksum (RFC 7692 §7.2.1).
    if (deflateInit2(&z_, level, Z_DEFLATED, -bits, memory_level, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::bad_alloc();
    }
  }
  deflate_compressor(const deflate_compressor&) = delete;
  deflate_compressor& operator=(const deflate_compressor&) = delete;
  ~deflate_compressor() { deflateEnd(&z_); }

  /// Compresses the next piece of the current message and appends the output to `out`. Pass `message_end` with
  /// the last piece (possibly empty): the output is then flushed, the trailing 00 00 FF FF removed, and the
  /// compressor is ready for the next message. A whole message in one call is the common case:
  /// `compress(text, true, payload)`. The pieces' outputs, concatenated, are the payload of the message's
  /// frames (the first frame with RSV1 set).
  void compress(std::string_view piece, bool message_end, std::string& out) {
    message_empty_ = message_empty_ && piece.empty();
    if (message_end && message_empty_) {
      // An empty message is the single byte 00 (RFC 7692 §7.2.3.6): an empty stored block once 00 00 FF FF is
      // appended. zlib would emit nothing for a second flush in a row, so this case never reaches it.
      out.push_back('\0');
      finish_message();
      return;
    }
    // zlib takes at most `max_zlib_piece` at a time; the flush goes with the last part only.
    do {
      const std::string_view part = piece.substr(0, detail::max_zlib_piece);
      piece.remove_prefix(part.size());
      deflate_part(part, message_end && piece.empty() ? Z_SYNC_FLUSH : Z_NO_FLUSH, out);
    } while (!piece.empty());
    if (message_end) {
      // A sync flush ends with the empty stored block 00 00 FF FF, which the receiver adds back (§7.2.1).
      out.resize(out.size() - 4);
      finish_message();
    }
  }

 private:
  // Runs deflate over `part` (at most `max_zlib_piece` bytes) until it has taken all of it and, when flushing,
  // left output room unused (so nothing is pending), appending the output to `out`.
  void deflate_part(std::string_view part, int flush, std::string& out) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
    z_.avail_in = static_cast<uInt>(part.size());
    for (;;) {
      const std::size_t before = out.size();
      const std::size_t room = std::max<std::size_t>(part.size() / 2 + 64, 1024);
      out.resize(before + room);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + before);
      z_.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&z_, flush);
      out.resize(before + room - z_.avail_out);
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("switchboard::ws: deflate failed");
      if (z_.avail_in == 0 && z_.avail_out != 0) break;
    }
  }

  void finish_message() {
    message_empty_ = true;
    if (no_context_takeover_) deflateReset(&z_);
  }

  z_stream z_{};
  bool no_context_takeover_;
  bool message_empty_ = true;  // nothing of the current message has been given yet
};

/// The outcome of one `deflate_decompressor::inflate` call.
struct inflate_result {
  std::size_t consumed = 0;  ///< input bytes used; pass the rest again in the next call
  std::size_t produced = 0;  ///< bytes written to the front of the output span
  bool message_done = false; ///< the message is complete: everything was inflated and flushed
  std::error_code error{};     ///< set on failure (`invalid_compressed_data`, `message_too_big`, `compression_failure`)
};

/// Decompresses incoming messages for one connection (RFC 7692 §7.2.2), enforcing a limit on each message's
/// decompressed size. Not thread-safe: one per connection, fed in arrival order. The frame parser owns one when
/// permessage-deflate is agreed; it is public so that it can be tested and fuzzed alone.
class deflate_decompressor {
 public:
  /// A decompressor for the messages the peer of `r` sends under `params`, whose messages may inflate to at most
  /// `max_message_size` bytes. Throws `std::invalid_argument` for window bits outside 8-15.
  deflate_decompressor(role r, const deflate_params& params, std::uint64_t max_message_size)
      : no_context_takeover_(r == role::server ? params.client_no_context_takeover
                                               : params.server_no_context_takeover),
        max_message_size_(max_message_size) {
    detail::check_window_bits(r == role::server ? params.client_max_window_bits : params.server_max_window_bits, 8,
                              "decompressor window bits");
  }
  deflate_decompressor(const deflate_decompressor&) = delete;
  deflate_decompressor& operator=(const deflate_decompressor&) = delete;
  ~deflate_decompressor() {
    if (initialised_) inflateEnd(&z_);
  }

  /// Inflates the next compressed bytes of the current message into `out` (which must not be empty).
  /// `input_ends_message` says that `input` runs to the end of the message's payload (the last frame, FIN set):
  /// once all of it is consumed, the decompressor appends 00 00 FF FF and finishes the message. Call again, with
  /// the unconsumed input (possibly none), while the result shows progress and the message is not done; when the
  /// output span fills up, further calls drain what zlib still holds.
  ///
  /// Fails with `message_too_big` as soon as the message's output would pass `max_message_size` (it never
  /// writes more than the limit plus one byte), with `invalid_compressed_data` when the bytes are not DEFLATE or
  /// the message does not end on a block boundary, and with `compression_failure` when zlib cannot allocate.
  /// `produced` counts the bytes written even then: what was decoded before the fault (a caller validating the
  /// text checks them first, so that its verdict does not depend on how the input was split). After a failure
  /// the decompressor must not be used again.
  inflate_result inflate(std::span<const char> input, bool input_ends_message, std::span<char> out) {
    inflate_result r;
    if (!initialised_) {
      if (inflateInit2(&z_, -inflate_window_bits) != Z_OK) {
        r.error = error::compression_failure;
        return r;
      }
      initialised_ = true;
    }
    if (input_ends_message && input.empty() && !message_started_) {
      // An empty payload with RSV1 carries an empty message. Feeding the trailer alone would leave zlib inside
      // an unfinished stored block and garble the next message, so zlib is not involved.
      r.message_done = true;
      return r;
    }
    message_started_ = true;

    const std::uint64_t room_left = max_message_size_ - produced_;
    // Never let zlib write more than one byte past the limit, so a tiny frame cannot inflate into memory.
    const std::size_t cap = room_left < out.size() ? static_cast<std::size_t>(room_left) + 1 : out.size();
    z_.next_out = reinterpret_cast<Bytef*>(out.data());
    z_.avail_out = static_cast<uInt>(std::min(cap, detail::max_zlib_piece));
    const uInt out_given = z_.avail_out;

    bool finished = false;
    const bool valid = advance(input, input_ends_message, r.consumed, finished);
    r.produced = out_given - z_.avail_out;
    produced_ += r.produced;
    // The limit first: the byte past it was decoded before any fault zlib may have found after it.
    if (produced_ > max_message_size_) {
      r.error = error::message_too_big;
    } else if (!valid) {
      r.error = error::invalid_compressed_data;
    } else if (finished) {
      r.message_done = true;
      finish_message();
    }
    return r;
  }

 private:
  // Feeds the message's bytes, then (once they are all in) the trailer of §7.2.2 step 1. Sets `finished` when
  // the message is complete; false when the data is not a valid message.
  bool advance(std::span<const char> input, bool input_ends_message, std::size_t& consumed, bool& finished) {
    if (!run(input.data(), input.size(), consumed)) return false;
    if (stream_ended_at_input_end_) {
      final_block_at_end_ = true;  // possibly only now, draining output of bytes consumed earlier
    } else if (consumed > 0) {
      final_block_at_end_ = false;
    }
    if (!input_ends_message || consumed < input.size() || z_.avail_out == 0) return true;
    if (final_block_at_end_ && trailer_fed_ == 0) {
      // The message ended with a final block (BFINAL, §7.2.3.4) and nothing after it: complete as it is.
      finished = true;
      return true;
    }
    std::size_t fed = 0;
    if (!run(trailer.data() + trailer_fed_, trailer.size() - trailer_fed_, fed)) return false;
    trailer_fed_ += fed;
    // Done when the whole trailer is in and zlib stopped for lack of input, not of output. A well-formed
    // message then sits on a block boundary (data_type bit 7: zlib waits for the next block header).
    if (trailer_fed_ == trailer.size() && z_.avail_out > 0) {
      if ((z_.data_type & 128) == 0) return false;
      finished = true;
    }
    return true;
  }

  // The empty stored block removed by the sender (RFC 7692 §7.2.2 step 1).
  static constexpr std::array<char, 4> trailer = {'\x00', '\x00', '\xff', '\xff'};

  // Feeds `size` bytes to zlib, in parts of at most `max_zlib_piece`, until they are consumed or the output is
  // full; `used` gets how many were taken. A final block (Z_STREAM_END) starts a new stream that keeps the
  // window, because RFC 7692 §7.2.3.4 lets a sender end messages with BFINAL blocks and the next message may
  // still refer to this one's data.
  bool run(const char* data, std::size_t size, std::size_t& used) {
    used = 0;
    stream_ended_at_input_end_ = false;
    for (;;) {
      const std::size_t part = std::min(size - used, detail::max_zlib_piece);
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data + used));
      z_.avail_in = static_cast<uInt>(part);
      const int rc = ::inflate(&z_, Z_SYNC_FLUSH);
      const std::size_t taken = part - z_.avail_in;
      used += taken;
      if (rc == Z_STREAM_END) {
        stream_ended_at_input_end_ = used == size;
        if (!restart_keeping_window()) return false;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return false;
      }
      // Stop when the input is all in, the output is full, or zlib could do nothing more with what it had.
      if (used == size || z_.avail_out == 0 || (taken == 0 && rc != Z_STREAM_END)) return true;
    }
  }

  bool restart_keeping_window() {
    std::vector<Bytef> window(std::size_t{1} << inflate_window_bits);
    uInt length = 0;
    if (inflateGetDictionary(&z_, window.data(), &length) != Z_OK) return false;
    if (inflateReset(&z_) != Z_OK) return false;
    return length == 0 || inflateSetDictionary(&z_, window.data(), length) == Z_OK;
  }

  void finish_message() {
    produced_ = 0;
    trailer_fed_ = 0;
    message_started_ = false;
    final_block_at_end_ = false;
    if (no_context_takeover_) inflateReset(&z_);
  }

  // Inflating always uses the largest window, whatever window the peer agreed to compress with. zlib refuses a
  // distance past a smaller window only where it reaches into output of an earlier inflate call, so a message
  // that breaks the agreement would be accepted or refused depending on how its bytes arrived; with the largest
  // window every valid DEFLATE stream is accepted, whatever the split (its cost: up to 32 KiB per connection
  // while context is kept, instead of 2^bits).
  static constexpr int inflate_window_bits = 15;

  z_stream z_{};
  bool no_context_takeover_;
  std::uint64_t max_message_size_;
  bool initialised_ = false;     // zlib state is allocated on the first compressed message
  bool message_started_ = false; // some input of the current message reached zlib
  std::uint64_t produced_ = 0;   // bytes of the current message inflated so far
  std::size_t trailer_fed_ = 0;  // bytes of the trailer zlib has taken
  bool stream_ended_at_input_end_ = false;  // the last run ended a final block exactly at its input's end
  bool final_block_at_end_ = false;  // the message's bytes so far end exactly with a final block
};

}  // namespace switchboard::ws
