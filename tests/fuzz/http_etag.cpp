// Fuzz target for entity tags and conditional request evaluation. The input is split at its first NUL byte: the
// first part is read as one entity-tag (the representation's `ETag`), the rest as If-Match / If-None-Match and
// date values. Checks that a parsed tag prints back as the input, that listed tags are entity-tags, and that the
// comparisons agree with the definitions of RFC 9110 §8.8.3.2.
#include <switchboard/http/etag.hpp>
#include <switchboard/http/preconditions.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  namespace http = switchboard::http;
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  const std::size_t nul = input.find('\0');
  const std::string_view first = input.substr(0, nul);
  const std::string_view rest = nul == std::string_view::npos ? std::string_view{} : input.substr(nul + 1);

  const auto current = http::entity_tag::parse(first);
  if (current && current->str() != first) std::abort();

  bool any_strong = false;
  bool any_weak = false;
  const bool list_ok = http::for_each_entity_tag(rest, [&](std::string_view listed) {
    const auto tag = http::entity_tag::parse(listed);
    if (!tag) std::abort();  // every element handed out is one entity-tag
    if (current) {
      any_strong = any_strong || http::strong_match(*tag, *current);
      any_weak = any_weak || http::weak_match(*tag, *current);
      if (http::strong_match(*tag, *current) && !http::weak_match(*tag, *current)) std::abort();
    }
  });

  const http::resource_validators validators{.etag = current ? &*current : nullptr};
  const std::string_view trimmed = http::detail::trim_ows(rest);
  if (trimmed != "*") {
    if (http::evaluate_if_match(rest, validators) != (list_ok && any_strong)) std::abort();
    if (http::evaluate_if_none_match(rest, validators) != !(list_ok && any_weak)) std::abort();
  }
  (void)http::evaluate_preconditions("GET", validators, {.if_match = rest, .if_modified_since = rest});
  (void)http::evaluate_preconditions("PUT", validators, {.if_none_match = rest, .if_unmodified_since = rest});
  return 0;
}
