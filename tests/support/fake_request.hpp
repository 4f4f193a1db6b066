// A request as the server fills it from a parsed header, without a connection: for the tests of what reads
// requests (the router, conditional requests, query parameters).
#pragma once

#include <switchboard/http/request.hpp>

#include <string>
#include <utility>
#include <vector>

namespace switchboard::test {

/// `method_token target` with `header_lines`. The request's views point into this object: it cannot be copied.
struct fake_request {
  fake_request(std::string method_token, std::string target,
               std::vector<std::pair<std::string, std::string>> header_lines = {})
      : token(std::move(method_token)), raw_target(std::move(target)), lines(std::move(header_lines)) {
    for (const auto& [name, value] : lines) fields.push_back({name, value});
    req.reset(http::request::fill{http::to_method(token), token, raw_target, 1, &fields, true}, nullptr, nullptr);
  }
  fake_request(const fake_request&) = delete;
  fake_request& operator=(const fake_request&) = delete;

  std::string token;
  std::string raw_target;
  std::vector<std::pair<std::string, std::string>> lines;
  http::field_views fields;
  http::request req;
};

}  // namespace switchboard::test
