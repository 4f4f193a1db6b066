// switchboard/pubsub/detail/resp_commands.hpp
//
// The command table of the Redis-protocol front end: every command it implements, with the metadata that Redis 7
// reports for it in COMMAND INFO (arity, flags, ACL categories, tips, key specs, subcommands), and the lookup that
// Redis's processCommand does before running a command: unknown command, unknown subcommand, wrong number of
// arguments, each with Redis 7's exact error text (server.c, processCommand and lookupSubcommand).
#pragma once

#include <switchboard/resp/encoder.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace switchboard::pubsub::detail {

/// What a command does (the connection's dispatch switches on it).
enum class resp_command_id {
  publish, spublish, subscribe, unsubscribe, psubscribe, punsubscribe, ssubscribe, sunsubscribe,
  ping, echo, hello, auth, quit, reset, info,
  client, client_id, client_getname, client_setname,
  command, command_count, command_info, command_list, command_docs,
  pubsub, pubsub_channels, pubsub_numsub, pubsub_numpat, pubsub_shardchannels, pubsub_shardnumsub,
};

/// Which key spec COMMAND INFO shows: sharded channels are keys to Redis Cluster (they pick the hash slot).
enum class resp_key_spec { none, all_arguments, first_argument };

/// One command, as Redis 7.0 describes it. Lists are space-separated words, in Redis's order.
struct resp_command_spec {
  resp_command_id id;
  std::string_view name;        ///< Redis's full name: "publish", "client|setname".
  int arity;                    ///< Redis's: n means exactly n arguments (name included), -n at least n.
  std::string_view flags;       ///< COMMAND INFO flags; "no_auth" lets it run before AUTH.
  std::string_view categories;  ///< ACL categories.
  std::string_view tips;        ///< Command tips.
  resp_key_spec keys = resp_key_spec::none;
  /// Allowed in RESP2 subscribed mode (Redis: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT, RESET).
  bool in_subscribed_mode = false;
};

inline constexpr std::string_view pubsub_flags = "pubsub noscript loading stale";
inline constexpr std::string_view connection_flags = "noscript loading stale fast no_auth allow_busy";

/// Top-level commands, the most frequent first (lookup is a linear scan).
inline constexpr std::array<resp_command_spec, 18> resp_commands{{
    {resp_command_id::publish, "publish", 3, "pubsub loading stale fast", "@pubsub @fast", ""},
    {resp_command_id::spublish, "spublish", 3, "pubsub loading stale fast", "@pubsub @fast", "",
     resp_key_spec::first_argument},
    {resp_command_id::ping, "ping", -1, "fast", "@fast @connection",
     "request_policy:all_shards response_policy:all_succeeded", resp_key_spec::none, true},
    {resp_command_id::subscribe, "subscribe", -2, pubsub_flags, "@pubsub @slow", "", resp_key_spec::none, true},
    {resp_command_id::unsubscribe, "unsubscribe", -1, pubsub_flags, "@pubsub @slow", "", resp_key_spec::none, true},
    {resp_command_id::psubscribe, "psubscribe", -2, pubsub_flags, "@pubsub @slow", "", resp_key_spec::none, true},
    {resp_command_id::punsubscribe, "punsubscribe", -1, pubsub_flags, "@pubsub @slow", "", resp_key_spec::none,
     true},
    {resp_command_id::ssubscribe, "ssubscribe", -2, pubsub_flags, "@pubsub @slow", "", resp_key_spec::all_arguments,
     true},
    {resp_command_id::sunsubscribe, "sunsubscribe", -1, pubsub_flags, "@pubsub @slow", "",
     resp_key_spec::all_arguments, true},
    {resp_command_id::echo, "echo", 2, "loading stale fast", "@fast @connection", ""},
    {resp_command_id::hello, "hello", -1, connection_flags, "@fast @connection", ""},
    {resp_command_id::auth, "auth", -2, connection_flags, "@fast @connection", ""},
    {resp_command_id::quit, "quit", -1, connection_flags, "@fast @connection", "", resp_key_spec::none, true},
    {resp_command_id::reset, "reset", 1, connection_flags, "@fast @connection", "", resp_key_spec::none, true},
    {resp_command_id::info, "info", -1, "loading stale", "@slow @dangerous",
     "nondeterministic_output request_policy:all_shards response_policy:special"},
    {resp_command_id::client, "client", -2, "", "@slow", ""},
    {resp_command_id::command, "command", -1, "loading stale", "@slow @connection", "nondeterministic_output_order"},
    {resp_command_id::pubsub, "pubsub", -2, "", "@slow", ""},
}};

/// Subcommands, grouped by their container (the part of the name before '|').
inline constexpr std::array<resp_command_spec, 12> resp_subcommands{{
    {resp_command_id::client_id, "client|id", 2, "noscript loading stale", "@slow @connection", ""},
    {resp_command_id::client_getname, "client|getname", 2, "noscript loading stale", "@slow @connection", ""},
    {resp_command_id::client_setname, "client|setname", 3, "noscript loading stale", "@slow @connection", ""},
    {resp_command_id::command_count, "command|count", 2, "loading stale", "@slow @connection", ""},
    {resp_command_id::command_info, "command|info", -2, "loading stale", "@slow @connection",
     "nondeterministic_output_order"},
    {resp_command_id::command_list, "command|list", -2, "loading stale", "@slow @connection",
     "nondeterministic_output_order"},
    {resp_command_id::command_docs, "command|docs", -2, "loading stale", "@slow @connection",
     "nondeterministic_output_order"},
    {resp_command_id::pubsub_channels, "pubsub|channels", -2, "pubsub loading stale", "@pubsub @slow", ""},
    {resp_command_id::pubsub_numsub, "pubsub|numsub", -2, "pubsub loading stale", "@pubsub @slow", ""},
    {resp_command_id::pubsub_numpat, "pubsub|numpat", 2, "pubsub loading stale", "@pubsub @slow", ""},
    {resp_command_id::pubsub_shardchannels, "pubsub|shardchannels", -2, "pubsub loading stale", "@pubsub @slow", ""},
    {resp_command_id::pubsub_shardnumsub, "pubsub|shardnumsub", -2, "pubsub loading stale", "@pubsub @slow", ""},
}};

/// ASCII case-insensitive equality (Redis command names are matched with strcasecmp).
constexpr bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

/// The top-level commands.
inline std::span<const resp_command_spec> top_level_commands() noexcept { return resp_commands; }

/// `text` in ASCII upper case (Redis names the container in upper case in its "Try X HELP." hints).
inline std::string upper_case(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; });
  return out;
}

/// True for the commands that have subcommands (CLIENT, COMMAND, PUBSUB): the lookup of every other command, a
/// PUBLISH above all, skips the search of the subcommand table.
constexpr bool has_subcommands(resp_command_id id) noexcept {
  return id == resp_command_id::client || id == resp_command_id::command || id == resp_command_id::pubsub;
}

/// The subcommands of `container` ("client", "command", "pubsub").
inline std::span<const resp_command_spec> subcommands_of(std::string_view container) noexcept {
  const auto in = [container](const resp_command_spec& s) {
    return s.name.size() > container.size() && s.name.starts_with(container) && s.name[container.size()] == '|';
  };
  const auto first = std::find_if(resp_subcommands.begin(), resp_subcommands.end(), in);
  const auto last = std::find_if_not(first, resp_subcommands.end(), in);
  return {first, last};
}

/// The part of a full name after '|' ("setname" for "client|setname"), or the name itself.
constexpr std::string_view short_name(std::string_view full) noexcept {
  const std::size_t bar = full.find('|');
  return bar == std::string_view::npos ? full : full.substr(bar + 1);
}

/// What `lookup_command` found: the command, or the error reply Redis sends instead of running it.
struct resp_lookup {
  const resp_command_spec* spec = nullptr;
  std::string error;  ///< Without the leading '-' and the CRLF (for `resp::encoder::error`).
};

/// `arg` up to its first NUL byte. Redis quotes arguments in its error replies with printf's `%s` or `%.128s`,
/// which stop there ("unknown command 'a', with args beginning with: 'b' " for `a\0x b\0y`): so do we, byte for
/// byte (server.c processCommand; networking.c addReplySubcommandSyntaxError, helloCommand).
constexpr std::string_view c_string(std::string_view arg) noexcept { return arg.substr(0, arg.find('\0')); }

/// Redis's reply to a command with the wrong number of arguments (addReplyErrorArity).
inline std::string arity_error(std::string_view full_name) {
  return "ERR wrong number of arguments for '" + std::string(full_name) + "' command";
}

/// Redis's reply when a handler finds its arguments wrong (addReplySubcommandSyntaxError).
inline std::string subcommand_syntax_error(std::span<const std::string_view> args) {
  return "ERR unknown subcommand or wrong number of arguments for '" + std::string(c_string(args[1]).substr(0, 128)) +
         "'. Try " + upper_case(args[0]) + " HELP.";
}

/// Finds the command `args` names, as Redis 7.0's processCommand does: the container command's subcommand when it
/// has subcommands and an argument follows, then the arity check.
inline resp_lookup lookup_command(std::span<const std::string_view> args) {
  resp_lookup out;
  const auto top = top_level_commands();
  const auto it = std::find_if(top.begin(), top.end(),
                               [&](const resp_command_spec& s) { return equals_ignoring_case(s.name, args[0]); });
  if (it == top.end()) {
    // "unknown command '%.128s', with args beginning with: " then "'%.*s' " per argument while under 128 bytes.
    out.error = "ERR unknown command '" + std::string(c_string(args[0]).substr(0, 128)) +
                "', with args beginning with: ";
    std::string listed;
    for (std::size_t i = 1; i < args.size() && listed.size() < 128; ++i) {
      listed += "'" + std::string(c_string(args[i]).substr(0, 128 - listed.size())) + "' ";
    }
    out.error += listed;
    return out;
  }
  const resp_command_spec* spec = &*it;
  if (has_subcommands(spec->id) && args.size() >= 2) {
    const auto subs = subcommands_of(spec->name);
    const auto sub = std::find_if(subs.begin(), subs.end(), [&](const resp_command_spec& s) {
      return equals_ignoring_case(short_name(s.name), args[1]);
    });
    if (sub == subs.end()) {
      out.error = "ERR unknown subcommand '" + std::string(c_string(args[1]).substr(0, 128)) + "'. Try " +
                  upper_case(args[0]) + " HELP.";
      return out;
    }
    spec = &*sub;
  }
  const auto n = static_cast<int>(std::min<std::size_t>(args.size(), 1 << 30));
  if ((spec->arity > 0 && n != spec->arity) || (spec->arity < 0 && n < -spec->arity)) {
    out.error = arity_error(spec->name);
    return out;
  }
  out.spec = spec;
  return out;
}

/// True when the space-separated `list` holds `word`.
constexpr bool has_word(std::string_view list, std::string_view word) noexcept {
  while (!list.empty()) {
    const std::size_t space = list.find(' ');
    if (list.substr(0, space) == word) return true;
    if (space == std::string_view::npos) break;
    list.remove_prefix(space + 1);
  }
  return false;
}

/// Writes the space-separated `list` as a set of simple strings (or bulk strings: Redis sends tips as bulks).
inline void encode_word_set(resp::encoder& e, std::string_view list, bool as_bulk) {
  std::size_t count = 0;
  for (std::string_view rest = list; !rest.empty();) {
    ++count;
    const std::size_t space = rest.find(' ');
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
  e.set_header(count);
  for (std::string_view rest = list; !rest.empty();) {
    const std::size_t space = rest.find(' ');
    const std::string_view word = rest.substr(0, space);
    if (as_bulk) e.bulk(word);
    else e.simple_string(word);
    if (space == std::string_view::npos) break;
    rest.remove_prefix(space + 1);
  }
}

/// One COMMAND INFO entry, in Redis 7.0's shape: name, arity, flags, first key, last key, key step, ACL
/// categories, tips, key specs, subcommands (sets in RESP3, arrays in RESP2).
inline void encode_command_info(resp::encoder& e, const resp_command_spec& spec) {
  e.array_header(10);
  e.bulk(spec.name);
  e.integer(spec.arity);
  encode_word_set(e, spec.flags, false);
  const bool keyed = spec.keys != resp_key_spec::none;
  e.integer(keyed ? 1 : 0);
  e.integer(spec.keys == resp_key_spec::all_arguments ? -1 : keyed ? 1 : 0);
  e.integer(keyed ? 1 : 0);
  encode_word_set(e, spec.categories, false);
  encode_word_set(e, spec.tips, true);
  if (keyed) {
    // The key spec of SPUBLISH / SSUBSCRIBE / SUNSUBSCRIBE: channels are "not_key" keys from argument 1.
    e.set_header(1);
    e.map_header(3);
    e.bulk("flags");
    encode_word_set(e, "not_key", false);
    e.bulk("begin_search");
    e.map_header(2).bulk("type").bulk("index").bulk("spec");
    e.map_header(1).bulk("index").integer(1);
    e.bulk("find_keys");
    e.map_header(2).bulk("type").bulk("range").bulk("spec");
    e.map_header(3).bulk("lastkey").integer(spec.keys == resp_key_spec::all_arguments ? -1 : 0);
    e.bulk("keystep").integer(1).bulk("limit").integer(0);
  } else {
    e.set_header(0);
  }
  const auto subs = subcommands_of(spec.name);
  e.set_header(subs.size());
  for (const resp_command_spec& s : subs) encode_command_info(e, s);
}

/// The spec named `name` (top level or "container|sub"), case-insensitively, for COMMAND INFO.
inline const resp_command_spec* find_spec(std::string_view name) noexcept {
  for (const auto& s : top_level_commands()) {
    if (equals_ignoring_case(s.name, name)) return &s;
  }
  for (const auto& s : resp_subcommands) {
    if (equals_ignoring_case(s.name, name)) return &s;
  }
  return nullptr;
}

}  // namespace switchboard::pubsub::detail
