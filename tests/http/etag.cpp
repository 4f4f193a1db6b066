#include <switchboard/http/etag.hpp>

#include "support/catch.hpp"

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::string_literals;
using switchboard::http::entity_tag;
using switchboard::http::for_each_entity_tag;
using switchboard::http::strong_match;
using switchboard::http::weak_match;

namespace {

entity_tag tag(std::string_view text) {
  auto parsed = entity_tag::parse(text);
  REQUIRE(parsed);
  return *parsed;
}

// The tags of a list, or nullopt if the list does not parse.
std::optional<std::vector<std::string>> tags_of(std::string_view list) {
  std::vector<std::string> tags;
  if (!for_each_entity_tag(list, [&](std::string_view t) { tags.emplace_back(t); })) return std::nullopt;
  return tags;
}

}  // namespace

TEST_CASE("etag: parsing one entity-tag", "[http][etag]") {
  SECTION("RFC 9110 8.8.3 examples") {
    const entity_tag a = tag(R"("xyzzy")");
    CHECK(!a.is_weak());
    CHECK(a.opaque() == "xyzzy");
    CHECK(a.str() == R"("xyzzy")");
    const entity_tag b = tag(R"(W/"xyzzy")");
    CHECK(b.is_weak());
    CHECK(b.opaque() == "xyzzy");
    CHECK(b.str() == R"(W/"xyzzy")");
    const entity_tag c = tag(R"("")");
    CHECK(!c.is_weak());
    CHECK(c.opaque().empty());
  }
  SECTION("every etagc character, including obs-text, a backslash and a comma") {
    std::string opaque;
    for (int c = 0x21; c <= 0xFF; ++c) {
      if (c != '"' && c != 0x7F) opaque += static_cast<char>(c);
    }
    const entity_tag t = tag('"' + opaque + '"');
    CHECK(t.opaque() == opaque);
  }
  SECTION("anything else is not an entity-tag") {
    const std::vector<std::string> invalid = {
        "",          "xyzzy",        R"("xyzzy)",   R"(xyzzy")",    R"(w/"xyzzy")",  R"(W/ "xyzzy")",
        R"(W/xyzzy)", "W/",          R"("x y")",    R"("a"b")",     R"("a" )",       R"( "a")",
        R"("a","b")", "\"a\tb\"",    "\"a\x7F\"",   "\"a\x01\"",    R"(W/W/"a")",    R"(""")",
        "*",
    };
    for (const std::string& text : invalid) {
      INFO(text);
      CHECK(!entity_tag::parse(text));
    }
  }
}

TEST_CASE("etag: made by the server", "[http][etag]") {
  CHECK(entity_tag::strong("abc").str() == R"("abc")");
  CHECK(entity_tag::weak("abc").str() == R"(W/"abc")");
  CHECK(entity_tag::strong("").str() == R"("")");
  CHECK_THROWS_AS(entity_tag::strong("a\"b"), std::invalid_argument);
  CHECK_THROWS_AS(entity_tag::weak("a b"), std::invalid_argument);
  CHECK_THROWS_AS(entity_tag::strong("a\nb"), std::invalid_argument);
  CHECK_THROWS_AS(entity_tag::strong("a\x7F"), std::invalid_argument);
}

TEST_CASE("etag: weak and strong comparison (RFC 9110 8.8.3.2 table)", "[http][etag]") {
  struct row {
    const char* a;
    const char* b;
    bool strong;
    bool weak;
  };
  const std::vector<row> rows = {
      {R"(W/"1")", R"(W/"1")", false, true},
      {R"(W/"1")", R"(W/"2")", false, false},
      {R"(W/"1")", R"("1")", false, true},
      {R"("1")", R"("1")", true, true},
      {R"("1")", R"("2")", false, false},
      {R"("")", R"(W/"")", false, true},
  };
  for (const row& r : rows) {
    INFO(r.a << " vs " << r.b);
    CHECK(strong_match(tag(r.a), tag(r.b)) == r.strong);
    CHECK(strong_match(tag(r.b), tag(r.a)) == r.strong);
    CHECK(weak_match(tag(r.a), tag(r.b)) == r.weak);
    CHECK(weak_match(tag(r.b), tag(r.a)) == r.weak);
  }
}

TEST_CASE("etag: lists of entity tags", "[http][etag]") {
  using list = std::vector<std::string>;
  // RFC 9110 13.1.1 and 13.1.2 examples.
  CHECK(tags_of(R"("xyzzy")") == list{R"("xyzzy")"});
  CHECK(tags_of(R"("xyzzy", "r2d2xxxx", "c3piozzzz")") == list{R"("xyzzy")", R"("r2d2xxxx")", R"("c3piozzzz")"});
  CHECK(tags_of(R"(W/"xyzzy", W/"r2d2xxxx", W/"c3piozzzz")") ==
        list{R"(W/"xyzzy")", R"(W/"r2d2xxxx")", R"(W/"c3piozzzz")"});
  SECTION("whitespace and empty elements (RFC 9110 5.6.1)") {
    CHECK(tags_of("") == list{});
    CHECK(tags_of(" \t ") == list{});
    CHECK(tags_of(R"(  "a"  ,	"b"  )") == list{R"("a")", R"("b")"});
    CHECK(tags_of(R"(, ,"a",, "b",)") == list{R"("a")", R"("b")"});
    CHECK(tags_of(R"("a","b")") == list{R"("a")", R"("b")"});
  }
  SECTION("a comma inside an opaque string does not split it") {
    CHECK(tags_of(R"("a,b", W/",")") == list{R"("a,b")", R"(W/",")"});
  }
  SECTION("what is not a list of entity tags") {
    for (const char* text : {"*", R"("a" "b")", R"("a" x)", R"("a", b)", R"("a)", R"("a";"b")", R"(w/"a")"}) {
      INFO(text);
      CHECK(!tags_of(text));
    }
  }
}
