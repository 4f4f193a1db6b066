// Fuzz target for sse::encode: arbitrary field values are encoded, and what the encoder accepted is read back
// by sse::parser, which must deliver exactly what was given (the round trip); what it refused must be refusable.
//
// Input: a sequence of records, each
//   flags (1 byte): 1 data, 2 type, 4 id, 8 retry, 16 negative retry, 32 comment first, 64/128 how to split
//   for each of comment, data, type, id that is present: a length byte, then that many bytes
//   retry, if present: 2 bytes (little endian)
// Each record is encoded after the previous ones into one stream, which the parser reads as it grows, so the
// last event id carries over from record to record as it does for a client.
#include <switchboard/core/utf8.hpp>
#include <switchboard/sse/encoder.hpp>
#include <switchboard/sse/parser.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace sse = switchboard::sse;
using switchboard::is_valid_utf8;

void check(bool condition) {
  if (!condition) std::abort();
}

class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string_view text() {
    const std::size_t want = byte();
    const std::size_t n = std::min(want, size_ - pos_);
    const std::string_view s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

bool has_any(std::string_view s, std::string_view chars) { return s.find_first_of(chars) != std::string_view::npos; }

// Whether the encoder must refuse `ev`: written independently of the encoder, from the rules in its header.
bool must_refuse(const sse::event& ev) {
  using namespace std::string_view_literals;
  if (has_any(ev.type, "\r\n")) return true;
  if (!ev.type.empty() && !ev.data) return true;
  if (ev.id && has_any(*ev.id, "\r\n\0"sv)) return true;
  if (ev.retry && ev.retry->count() < 0) return true;
  if (!is_valid_utf8(ev.type) || (ev.id && !is_valid_utf8(*ev.id)) || (ev.data && !is_valid_utf8(*ev.data))) {
    return true;
  }
  return false;
}

// The data as a client sees it: every CRLF, CR or LF is one LF.
std::string client_data(std::string_view data) {
  std::string out;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '\r') {
      out += '\n';
      if (i + 1 < data.size() && data[i + 1] == '\n') ++i;
    } else {
      out += data[i];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  reader in(bytes, size);
  sse::parser parser({.utf8 = sse::utf8_policy::reject});
  std::string stream;
  std::string expected_last_id;
  std::optional<std::chrono::milliseconds> expected_retry;

  while (!in.empty()) {
    const std::uint8_t flags = in.byte();
    const std::optional<std::string_view> comment = (flags & 32) ? std::optional(in.text()) : std::nullopt;
    sse::event ev;
    if (flags & 1) ev.data = in.text();
    if (flags & 2) ev.type = in.text();
    if (flags & 4) ev.id = in.text();
    if (flags & 8) {
      const int value = in.byte() | (in.byte() << 8);
      ev.retry = std::chrono::milliseconds((flags & 16) ? -value : value);
    }

    const std::size_t before = stream.size();
    if (comment) sse::encode_comment(*comment, stream);
    const std::size_t after_comment = stream.size();
    const std::error_code ec = sse::encode(ev, stream);
    check(static_cast<bool>(ec) == must_refuse(ev));
    if (ec) {
      check(stream.size() == after_comment);  // a refused event writes nothing
      std::error_code shared_ec;
      check(sse::encode_shared(ev, shared_ec).empty() && shared_ec == ec);
    } else {
      std::error_code shared_ec;
      const auto shared = sse::encode_shared(ev, shared_ec);
      check(!shared_ec && !shared.empty() && shared.view() == std::string_view(stream).substr(after_comment));
    }

    // Read what this record added, cut in two at a point chosen by the flags.
    const std::string_view added = std::string_view(stream).substr(before);
    const std::size_t cut = added.empty() ? 0 : ((flags >> 6) * 7u) % added.size();
    std::vector<sse::message> got;
    auto collect = [&](const sse::message& m) { got.push_back(m); };
    check(!parser.feed(added.substr(0, cut), collect));
    check(!parser.feed(added.substr(cut), collect));

    std::vector<sse::message> expected;
    if (!ec) {
      if (ev.id) expected_last_id = std::string(*ev.id);
      if (ev.retry) expected_retry = *ev.retry;
      if (ev.data) {
        expected.push_back({ev.type.empty() ? "message" : std::string(ev.type), client_data(*ev.data), expected_last_id});
      }
    }
    check(got == expected);
    check(parser.last_event_id() == expected_last_id);
    check(parser.retry() == expected_retry);
  }
  return 0;
}
