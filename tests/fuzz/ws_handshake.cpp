// libFuzzer target: the handshake header parsers (Sec-WebSocket-Extensions with permessage-deflate
// negotiation, Sec-WebSocket-Protocol, Origin/Host, Sec-WebSocket-Key). Whatever a server agrees to, a client
// that offered the defaults must accept from the server's own response.
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/extensions.hpp>
#include <switchboard/ws/handshake.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace switchboard::ws;
  const std::string_view header(reinterpret_cast<const char*>(data), size);
  auto check = [](bool ok) {
    if (!ok) __builtin_trap();
  };

  std::vector<extension> offers;
  if (!parse_extensions(header, offers)) {
    check(!offers.empty());
    const auto agreed = negotiate_deflate(offers, {.enabled = true, .client_max_window_bits = 12});
    if (agreed) {
      std::vector<extension> response;
      check(!parse_extensions(agreed->response, response));
      std::optional<deflate_params> seen;
      const deflate_options client{.enabled = true};
      if (agreed->params.client_max_window_bits >= 9) {
        check(!accept_deflate_response(response, client, seen));
        check(seen && seen->server_max_window_bits == agreed->params.server_max_window_bits &&
              seen->client_max_window_bits == agreed->params.client_max_window_bits &&
              seen->server_no_context_takeover == agreed->params.server_no_context_takeover);
      }
    }
    std::optional<deflate_params> client_view;
    (void)accept_deflate_response(offers, {.enabled = true}, client_view);
  }

  std::vector<std::string_view> protocols;
  if (!parse_subprotocols(header, protocols)) {
    check(!protocols.empty());
    const std::string_view supported[] = {"chat", "mqtt"};
    const auto chosen = select_subprotocol(protocols, supported);
    if (chosen) check(!check_subprotocol(protocols, *chosen));
  }

  // The first line as Origin, the rest as Host.
  const std::size_t nl = header.find('\n');
  const std::string_view origin = header.substr(0, nl);
  const std::string_view host = nl == std::string_view::npos ? std::string_view{} : header.substr(nl + 1);
  const bool same = origin_allowed(origin, host, size % 2 == 0, {});
  (void)same;
  (void)origin_allowed(origin, host, false, {.allow_same_origin = false, .allowed = {std::string(host)}});

  if (!check_client_key(header)) check(accept_value(header).size() == 28);
  return 0;
}
