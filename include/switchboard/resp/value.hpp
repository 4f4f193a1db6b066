// switchboard/resp/value.hpp
//
// An owned RESP2/RESP3 value, as `reply_parser` produces it: a plain struct whose `kind` says which fields mean
// something. Types follow the RESP3 specification (github.com/antirez/RESP3, spec.md); RESP2 replies use the
// subset simple string, error, integer, bulk string, array and null.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace switchboard::resp {

/// The type of a RESP value, with its wire marker.
enum class value_kind : std::uint8_t {
  simple_string,    ///< `+OK` -> `text`
  simple_error,     ///< `-ERR message` -> `text` (the whole line after '-', error code included)
  integer,          ///< `:42` -> `integer`
  bulk_string,      ///< `$3\r\nfoo` -> `text`
  null,             ///< RESP3 `_`, RESP2 null bulk `$-1` and null array `*-1`
  array,            ///< `*N` -> `elements`
  map,              ///< `%N` -> `elements` holds key, value, key, value, ... (2N values, in wire order)
  set,              ///< `~N` -> `elements`
  push,             ///< `>N` -> `elements` (out-of-band data such as pub/sub messages)
  double_number,    ///< `,3.14`, `,inf`, `,-inf`, `,nan` -> `number`
  boolean,          ///< `#t` / `#f` -> `boolean`
  big_number,       ///< `(12345678901234567890` -> `text` (the digits, with their sign if any)
  verbatim_string,  ///< `=N\r\ntxt:...` -> `text` holds all N bytes: a 3-byte format, ':', then the content
  blob_error,       ///< `!N\r\n...` -> `text`
};

/// A RESP value and, recursively, its elements. Only the fields named by `kind` are meaningful; the others keep
/// their defaults, so that two values compare equal exactly when they are the same value.
struct value {
  value_kind kind = value_kind::null;
  std::string text;              ///< simple string, simple error, bulk string, big number, verbatim, blob error
  std::int64_t integer = 0;      ///< integer
  double number = 0.0;           ///< double_number
  bool boolean = false;          ///< boolean
  std::vector<value> elements;   ///< array, set, push; map: keys and values alternating
  /// The RESP3 attribute map (`|N`) sent just before this value, keys and values alternating. Filled only when
  /// `reply_parser_options::keep_attributes` is set; otherwise attributes are read and dropped.
  std::vector<value> attributes;

  /// True for simple errors and blob errors: the reply is a failure and `text` says why.
  bool is_error() const noexcept { return kind == value_kind::simple_error || kind == value_kind::blob_error; }

  /// Field by field; note that a NaN double never equals itself.
  bool operator==(const value&) const = default;
};

}  // namespace switchboard::resp
