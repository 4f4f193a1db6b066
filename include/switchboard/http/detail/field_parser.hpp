// switchboard/http/detail/field_parser.hpp
//
// Parsing of field lines (RFC 9112 §5), shared by the header section and the chunked trailer section.
#pragma once

#include <switchboard/http/detail/chars.hpp>
#include <switchboard/http/error.hpp>
#include <switchboard/http/fields.hpp>

#include <cstddef>
#include <cstring>
#include <system_error>

namespace switchboard::http::detail {

/// Finds the end of a header or trailer section ("\r\n\r\n", or "\r\n" at `begin` for an empty section)
/// searching from `from`. Returns a pointer just past it, or nullptr if it is not there yet. Every CR and LF it
/// passes must be part of a CRLF: a bare one is `error::bad_line_ending` at once (no field or start line may hold
/// one), so that a peer cannot keep an incomplete section open with lines another parser would end early.
inline const char* find_section_end(const char* begin, const char* from, const char* end,
                                    std::error_code& ec) noexcept {
  for (const char* p = from < begin ? begin : from; p < end; ++p) {
    if (*p == '\r') {
      if (p + 1 < end && p[1] != '\n') {
        ec = error::bad_line_ending;
        return nullptr;
      }
    } else if (*p == '\n') {
      if (p == begin || p[-1] != '\r') {
        ec = error::bad_line_ending;
        return nullptr;
      }
      // "\r\n\r\n": this LF ends the empty line if the three bytes before it are "\r\n\r".
      if (p - begin >= 3 && p[-2] == '\n' && p[-3] == '\r') return p + 1;
      if (p - begin == 1) return p + 1;  // the section is empty
    }
  }
  return nullptr;
}

/// Parses field lines from `p` up to and including the empty line that ends the section. On success returns a
/// pointer past that empty line and appends the fields to `out`. Returns nullptr when more input is needed
/// (ec clear) or on a malformed line (ec set). Rejects, rather than repairs, everything that two parsers could
/// read differently: obs-fold, whitespace before the colon, bare CR or LF, control characters in values.
inline const char* parse_field_lines(const char* p, const char* end, field_views& out, std::size_t max_fields,
                                     std::error_code& ec) noexcept {
  for (;;) {
    if (p >= end) return nullptr;
    if (*p == '\r') {
      if (p + 1 >= end) return nullptr;
      if (p[1] != '\n') {
        ec = error::bad_line_ending;
        return nullptr;
      }
      return p + 2;
    }
    if (*p == '\n') {
      ec = error::bad_line_ending;
      return nullptr;
    }
    if (is_ows(*p)) {
      // A field line that starts with whitespace is obs-fold (RFC 9112 §5.2), or whitespace before the first
      // field (§2.2); both are rejected.
      ec = error::obsolete_line_folding;
      return nullptr;
    }
    // field-name = token
    const char* name_begin = p;
    while (p < end && token_table[static_cast<unsigned char>(*p)]) ++p;
    if (p >= end) return nullptr;
    if (*p != ':') {
      ec = is_ows(*p) ? error::whitespace_before_colon : error::bad_field_name;
      return nullptr;
    }
    if (p == name_begin) {
      ec = error::bad_field_name;
      return nullptr;
    }
    const std::string_view name(name_begin, static_cast<std::size_t>(p - name_begin));
    ++p;
    while (p < end && is_ows(*p)) ++p;
    const char* value_begin = p;
    // field-value: scan field-vchar / SP / HTAB; the first other byte must be the CR of CRLF.
    while (p < end && field_value_table[static_cast<unsigned char>(*p)]) ++p;
    if (p >= end) return nullptr;
    if (*p != '\r') {
      ec = (*p == '\n') ? error::bad_line_ending : error::bad_field_value;
      return nullptr;
    }
    if (p + 1 >= end) return nullptr;
    if (p[1] != '\n') {
      ec = error::bad_line_ending;
      return nullptr;
    }
    const char* value_end = p;
    while (value_end > value_begin && is_ows(value_end[-1])) --value_end;
    if (out.size() >= max_fields) {
      ec = error::too_many_fields;
      return nullptr;
    }
    out.push_back({name, std::string_view(value_begin, static_cast<std::size_t>(value_end - value_begin))});
    p += 2;
  }
}

}  // namespace switchboard::http::detail
