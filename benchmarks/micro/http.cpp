// Microbenchmarks of the HTTP codec and router: parsing (a typical browser request, and 16 pipelined; a request
// with an 8 KB target sent one byte at a time), writing a response head, and router lookup with 10, 100 and 1,000
// routes.
#include <switchboard/http/detail/serializer.hpp>
#include <switchboard/http/parser.hpp>
#include <switchboard/http/router.hpp>

#include <benchmark/benchmark.h>

#include <string>

using namespace switchboard::http;

namespace {

// A typical request from a browser: 400 bytes.
std::string browser_request() {
  std::string r =
      "GET /api/v1/users/12345/profile?fields=name,email HTTP/1.1\r\n"
      "Host: www.example.com\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n"
      "Accept: application/json,text/plain;q=0.9,*/*;q=0.8\r\n"
      "Accept-Language: en-US,en;q=0.5\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "Connection: keep-alive\r\n";
  // Pad with a cookie to exactly 400 bytes.
  const std::size_t fixed = r.size() + std::string_view("Cookie: session=\r\n\r\n").size();
  r += "Cookie: session=" + std::string(400 - fixed, 'c') + "\r\n\r\n";
  return r;
}

void parse_all(request_parser& p, std::string_view input, int& messages) {
  std::error_code ec;
  while (!input.empty()) {
    const std::size_t n = p.put(input, ec);
    if (ec || n == 0) break;
    input.remove_prefix(n);
    if (p.done()) {
      ++messages;
      p.reset();
    }
  }
}

void parse_requests(benchmark::State& state, std::string input, int per_buffer) {
  request_parser p;
  for (auto _ : state) {
    int messages = 0;
    parse_all(p, input, messages);
    if (messages != per_buffer) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(messages);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.SetItemsProcessed(state.iterations() * per_buffer);
}

// A slow peer: each byte comes in a read of its own, and the parser is given the whole buffer so far each time, as
// the server's connection does. The cost per request must grow linearly with its size, not with its square.
void parse_request_byte_by_byte(benchmark::State& state) {
  const std::string input = "GET /" + std::string(8000, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n";
  std::string buffer;
  for (auto _ : state) {
    request_parser p;
    buffer.clear();
    std::error_code ec;
    std::size_t consumed = 0;
    for (const char c : input) {
      buffer.push_back(c);
      consumed = p.put(buffer, ec);
      if (ec || consumed != 0) break;
    }
    if (ec || !p.done()) state.SkipWithError("parse failed");
    benchmark::DoNotOptimize(consumed);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

void serialize_head(benchmark::State& state) {
  response r(status::ok, "Hello, World!", "text/plain");
  detail::head_info info;
  info.content_length = r.body().size();
  info.date = "Sat, 28 Nov 2026 21:47:25 GMT";
  std::string out;
  for (auto _ : state) {
    out.clear();
    detail::append_response_head(out, r, info);
    out.append(r.body());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

void router_lookup(benchmark::State& state) {
  const int routes = static_cast<int>(state.range(0));
  router r;
  for (int i = 0; i < routes; ++i) {
    r.get("/api/v1/resource" + std::to_string(i) + "/{id:int}", [](request&) { return response(); });
  }
  const std::string target = "/api/v1/resource" + std::to_string(routes / 2) + "/12345";
  field_views fields;
  request req;
  req.reset(request::fill{method::get, "GET", target, 1, &fields, true}, nullptr, nullptr);
  for (auto _ : state) {
    auto m = r.match(req);
    if (m.result != route_match::kind::found) state.SkipWithError("no match");
    benchmark::DoNotOptimize(m.matched);
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK_CAPTURE(parse_requests, browser_400_bytes, browser_request(), 1);
BENCHMARK_CAPTURE(parse_requests, browser_16_pipelined, repeat(browser_request(), 16), 16);
BENCHMARK_CAPTURE(parse_requests, wrk_plaintext_16_pipelined,
                  repeat("GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", 16), 16);
BENCHMARK(parse_request_byte_by_byte);
BENCHMARK(serialize_head);
BENCHMARK(router_lookup)->Arg(10)->Arg(100)->Arg(1000);

BENCHMARK_MAIN();
