// What the differential tests share (a parser of ours against a Node.js reader of the same format, fed the same
// random streams): the streams cut into chunks, the bytes carried through JSON as hex, the Node script run with
// one JSON line per stream in and out, and bytes shown readably in failure messages.
#pragma once

#include "support/catch.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::test {

/// `bytes` cut into consecutive pieces of the given sizes (which add up to its size).
inline std::vector<std::string> cut_into(const std::string& bytes, const std::vector<std::size_t>& sizes) {
  std::vector<std::string> pieces;
  std::size_t at = 0;
  for (std::size_t n : sizes) {
    pieces.push_back(bytes.substr(at, n));
    at += n;
  }
  return pieces;
}

/// Bytes as lowercase hex, two digits each: JSON strings carry any byte that way.
inline std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

/// The inverse of hex().
inline std::string unhex(std::string_view h) {
  std::string out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16));
  }
  return out;
}

/// The chunks as a JSON array of hex strings.
inline nlohmann::json hex_chunks(const std::vector<std::string>& chunks) {
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& chunk : chunks) out.push_back(hex(chunk));
  return out;
}

/// Bytes in C string notation, for failure messages.
inline std::string escaped(std::string_view bytes) {
  std::ostringstream s;
  for (unsigned char b : bytes) {
    if (b == '\n') {
      s << "\\n";
    } else if (b == '\r') {
      s << "\\r";
    } else if (b == '\t') {
      s << "\\t";
    } else if (b == '\\' || b == '"') {
      s << '\\' << b;
    } else if (b >= 0x20 && b < 0x7F) {
      s << b;
    } else {
      s << "\\x" << "0123456789abcdef"[b >> 4] << "0123456789abcdef"[b & 15];
    }
  }
  return s.str();
}

/// Runs `script` of tests/conformance/node (the Node peers that `npm ci` installed) with `arguments`, writes
/// `input` (one JSON line per stream) to its standard input, and returns the JSON lines it printed, in order.
/// Fails the test when the script does not exit with 0.
inline std::vector<nlohmann::json> run_node_peer(const std::string& script, const std::vector<std::string>& arguments,
                                                 const std::string& input) {
  std::vector<std::string> argv{"node", std::string(SWITCHBOARD_NODE_PEERS) + "/" + script};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  const process_result node = run_process(argv, std::chrono::seconds(60), input);
  INFO(node.err);
  REQUIRE(node.exit_code == 0);
  std::vector<nlohmann::json> records;
  std::istringstream lines(node.out);
  for (std::string line; std::getline(lines, line);) records.push_back(nlohmann::json::parse(line));
  return records;
}

}  // namespace switchboard::test
