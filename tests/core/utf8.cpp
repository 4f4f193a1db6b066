// The incremental UTF-8 validator: Markus Kuhn's decoder test sequences (as Autobahn 6.x uses them), every
// code point, every 1-3 byte sequence against a simple reference, and the incremental contract (any split gives
// the same answer; the first bad byte fails at once).
#include <switchboard/core/utf8.hpp>

#include "support/catch.hpp"
#include "support/utf8_reference.hpp"

#include <string>
#include <vector>

using switchboard::is_valid_utf8;
using switchboard::utf8_validator;
using switchboard::test::encode_utf8;
using switchboard::test::reference_utf8_valid;

namespace {

// Validates `s` fed in pieces of `piece` bytes.
bool valid_in_pieces(std::string_view s, std::size_t piece) {
  utf8_validator v;
  for (std::size_t i = 0; i < s.size(); i += piece) {
    if (!v.feed(s.substr(i, piece))) return false;
  }
  return v.complete();
}

// Validates `s` split in two at `k`.
bool valid_split(std::string_view s, std::size_t k) {
  utf8_validator v;
  return v.feed(s.substr(0, k)) && v.feed(s.substr(k)) && v.complete();
}

void check_every_split(std::string_view s, bool expected) {
  INFO("input size " << s.size());
  CHECK(is_valid_utf8(s) == expected);
  CHECK(reference_utf8_valid(s) == expected);
  for (std::size_t k = 0; k <= s.size(); ++k) {
    INFO("split at " << k);
    CHECK(valid_split(s, k) == expected);
  }
  for (std::size_t piece : {1, 2, 3, 5, 16, 17}) CHECK(valid_in_pieces(s, piece) == expected);
}

}  // namespace

TEST_CASE("utf8: Kuhn decoder test sequences", "[ws][utf8]") {
  const std::vector<std::string> valid = {
      "", "hello$world", "hello\xC2\xA2world", "hello\xE2\x82\xACworld", "hello\xF0\xA4\xAD\xA2world",
      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
      // 2.1 / 2.2 first and last sequence of each length
      std::string("\x00", 1), "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80", "\x7f", "\xdf\xbf", "\xef\xbf\xbf",
      "\xf4\x8f\xbf\xbf",
      // 2.3 other boundaries
      "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbd",
      // 5.3 non-characters (valid UTF-8 by RFC 3629) and Unicode specials
      "\xef\xbf\xbe", "\xf0\x9f\xbf\xbe", "\xf3\xbf\xbf\xbf", "\xf4\x8f\xbf\xbe", "\xef\xbf\xb9", "\xef\xbf\xbc",
  };
  const std::vector<std::string> invalid = {
      // 2.x beyond U+10FFFF and 5/6-byte forms
      "\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf", "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80",
      // 3.1 unexpected continuation bytes
      "\x80", "\xbf", "\x80\xbf", "\x80\xbf\x80\xbf\x80\xbf",
      // 3.2 lonely start bytes followed by a space
      "\xc0 ", "\xdf ", "\xe0 ", "\xef ", "\xf0 ", "\xf7 ", "\xf8 ", "\xfb ", "\xfc ", "\xfd ",
      // 3.3 sequences with the last continuation byte missing
      "\xc0", "\xe0\x80", "\xf0\x80\x80", "\xdf", "\xef\xbf", "\xf7\xbf\xbf",
      // 3.5 impossible bytes
      "\xfe", "\xff", "\xfe\xfe\xff\xff",
      // 4.1-4.3 overlong forms
      "\xc0\xaf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xc0\x80",
      "\xe0\x80\x80", "\xf0\x80\x80\x80",
      // 5.1 single surrogates, 5.2 paired surrogates
      "\xed\xa0\x80", "\xed\xad\xbf", "\xed\xae\x80", "\xed\xaf\xbf", "\xed\xb0\x80", "\xed\xbe\x80", "\xed\xbf\xbf",
      "\xed\xa0\x80\xed\xb0\x80", "\xed\xaf\xbf\xed\xbf\xbf",
  };
  SECTION("valid") {
    for (const auto& s : valid) check_every_split(s, true);
  }
  SECTION("invalid") {
    for (const auto& s : invalid) check_every_split(s, false);
  }
  SECTION("3.1 all continuation bytes, 3.4 incomplete sequences concatenated") {
    std::string all_continuations;
    for (int b = 0x80; b <= 0xbf; ++b) all_continuations.push_back(static_cast<char>(b));
    check_every_split(all_continuations, false);
    check_every_split("\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf", false);
  }
}

TEST_CASE("utf8: every code point", "[ws][utf8]") {
  std::string all_scalars;
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    const std::string e = encode_utf8(cp);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    REQUIRE(is_valid_utf8(e) == !surrogate);
    if (!surrogate) all_scalars += e;
  }
  CHECK(is_valid_utf8(all_scalars));
  for (std::size_t piece : {1, 3, 7, 4096}) CHECK(valid_in_pieces(all_scalars, piece));
  CHECK_FALSE(is_valid_utf8(encode_utf8(0x110000)));
  CHECK_FALSE(is_valid_utf8(encode_utf8(0x1FFFFF)));
}

TEST_CASE("utf8: every sequence of up to 3 bytes agrees with the reference", "[ws][utf8]") {
  std::size_t disagreements = 0;
  // The sequence alone, and at the end of a 16-byte block of ASCII so that the fast path hands over mid-input.
  std::string block(16, 'a');
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      for (int c = 0; c < 256; ++c) {
        block[13] = static_cast<char>(a);
        block[14] = static_cast<char>(b);
        block[15] = static_cast<char>(c);
        const std::string_view three = std::string_view(block).substr(13);
        const bool expected = reference_utf8_valid(three);
        if (is_valid_utf8(three) != expected || is_valid_utf8(block) != expected) ++disagreements;
        if (c == 0 && is_valid_utf8(three.substr(0, 2)) != reference_utf8_valid(three.substr(0, 2))) ++disagreements;
      }
      if (b == 0 && is_valid_utf8(block.substr(13, 1)) != reference_utf8_valid(block.substr(13, 1))) ++disagreements;
    }
  }
  CHECK(disagreements == 0);
}

TEST_CASE("utf8: the ASCII fast path hands over at every position", "[ws][utf8]") {
  const std::string ascii(40, 'a');
  for (std::size_t at = 0; at <= ascii.size(); ++at) {
    INFO("non-ASCII at " << at);
    const auto with = [&](std::string_view bytes) { return ascii.substr(0, at) + std::string(bytes) + ascii.substr(at); };
    check_every_split(with("\xe2\x82\xac"), true);     // €
    CHECK_FALSE(is_valid_utf8(with("\xe2\x82")));       // € missing its last byte, followed by ASCII
    CHECK_FALSE(is_valid_utf8(with("\xff")));
  }
}

TEST_CASE("utf8: the incremental contract", "[ws][utf8]") {
  SECTION("a code point split across calls is not an error until the text ends") {
    utf8_validator v;
    CHECK(v.feed("\xf0\x9f"));
    CHECK_FALSE(v.complete());
    CHECK(v.feed("\x98"));
    CHECK(v.feed("\x80"));  // U+1F600
    CHECK(v.complete());
  }
  SECTION("the first bad byte fails at once, and the validator stays failed") {
    utf8_validator v;
    CHECK(v.feed("edited"));
    CHECK_FALSE(v.feed("\xed\xa0\x80"));  // a surrogate: fails on its second byte
    CHECK(v.failed());
    CHECK_FALSE(v.feed("ok"));
    CHECK_FALSE(v.complete());
    v.reset();
    CHECK(v.feed("ok"));
    CHECK(v.complete());
  }
  SECTION("empty input, even without storage, changes nothing") {
    CHECK(is_valid_utf8(std::string_view{}));
    utf8_validator v;
    CHECK(v.feed(std::string_view{}));
    CHECK(v.feed("\xe2"));
    CHECK(v.feed(std::string_view{}));
    CHECK_FALSE(v.complete());
    CHECK(v.feed("\x82\xac"));
    CHECK(v.complete());
  }
  SECTION("a bad continuation is caught in the call it arrives in") {
    utf8_validator v;
    CHECK(v.feed("ed\xed"));  // could still become a valid sequence
    CHECK_FALSE(v.feed("\xa0"));  // 0xA0 after 0xED would be a surrogate
  }
  SECTION("a 4-byte lead is checked against its second byte immediately") {
    utf8_validator v;
    CHECK(v.feed("\xf4"));
    CHECK_FALSE(v.feed("\x90"));  // would be above U+10FFFF
  }
}
