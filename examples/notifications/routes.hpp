// The routes of the `notifications` example: broker topics delivered several ways (docs/push.md, docs/polling.md).
//
//   POST /topics/{topic}            publishes the request body; answers {"topic": ..., "seq": N}
//   GET  /topics/{topic}/ws         a WebSocket with the topic's messages ({"topic","seq","data"}); ?from=N resumes
//   GET  /topics/{topic}/events     Server-Sent Events (id = seq); Last-Event-ID or ?lastEventId=N resumes
//   GET  /topics/{topic}/latest     the latest message for polling, with ETag / If-None-Match -> 304
//   GET  /topics/{topic}/poll       long polling: the messages after ?cursor=N, or wait for the next (docs/long-polling.md)
//   GET  /ws                        rooms: one WebSocket, several topics ({"op":"join","topic":...,"from":N})
//   GET  /                          a page showing each transport receiving the same events (`page_path`)
//
// Anyone may publish here, to any topic, so that the page works without set-up; a real service authenticates its
// publishers. The broker's limits still hold for an open endpoint: `max_topics`, and `max_retained_bytes` over
// every topic's retention. A message's `Content-Type` is the one `/latest` serves it with, so only types a browser
// does not run are taken (`allowed_content_type`): otherwise anyone could have this origin serve their HTML.
#pragma once

#include "notifications/page.hpp"

#include <switchboard/http/date.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/longpoll/endpoint.hpp>
#include <switchboard/pubsub/broker.hpp>
#include <switchboard/push/hub.hpp>
#include <switchboard/push/latest.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace examples::notifications {

/// The broker, the push hub and the polling endpoints the routes use. Register `hub` and `polls` with the runtime
/// (`runtime::add`) so that a drain answers their clients.
struct service {
  /// `retain`: messages kept per topic for resuming and polling (`--retain`, default 1,000), at most 16 MiB.
  service(asio::any_io_executor executor, std::size_t retain, switchboard::push::hub_options options = {})
      : broker(executor, {.retention = {.max_messages = retain, .max_bytes = 16 * 1024 * 1024}}),
        hub(broker, std::move(options)),
        latest(broker),
        polls(broker) {}

  switchboard::pubsub::broker broker;
  switchboard::push::hub hub;
  switchboard::push::latest_endpoint latest;
  switchboard::longpoll::endpoint polls;
};

/// The largest message a client may publish.
inline constexpr std::size_t max_message_bytes = 64 * 1024;

/// Whether a publisher's `Content-Type` may be stored with its message: text, JSON or bytes, with any parameters
/// (`text/plain; charset=utf-8`). Media types are case-insensitive (RFC 9110 §8.3.1).
inline bool allowed_content_type(std::string_view type) {
  std::string media(type.substr(0, type.find(';')));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (char& c : media) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return media == "text/plain" || media == "application/json" || media == "application/octet-stream";
}

/// Adds the routes above; the page is served at `page_path`.
inline void add_routes(switchboard::http::router& routes, service& s, std::string_view page_path = "/") {
  using namespace switchboard;
  using http::request;
  using http::response;
  routes
      .post("/topics/{topic}",
            [&s](request& req) {
              pubsub::message_draft draft{.payload = shared_bytes::copy(req.body())};
              if (auto type = req.header("content-type"); !type.empty()) {
                if (!allowed_content_type(type)) {
                  return response::problem(http::status::unsupported_media_type,
                                           "Publish text/plain, application/json or application/octet-stream.");
                }
                draft.headers.push_back({"content-type", std::string(type)});
              }
              draft.headers.push_back({"last-modified", std::string(http::current_http_date())});
              if (auto event = req.query_param("event")) draft.headers.push_back({"event", *event});
              const std::string topic(req.param("topic"));
              const pubsub::publish_result r = s.broker.publish(topic, std::move(draft));
              if (r.error == pubsub::error::topic_too_long) return response::problem(http::status::bad_request, r.error.message());
              if (!r) return response::problem(http::status::service_unavailable, r.error.message());  // full: retry later
              return response::json({{"topic", topic}, {"seq", r.sequence}});
            })
      .body_limit(max_message_bytes);
  routes.get("/topics/{topic}/ws", [&s](request& req) { return s.hub.websocket(req, req.param("topic")); });
  routes.get("/topics/{topic}/events", [&s](request& req) { return s.hub.sse(req, req.param("topic")); });
  routes.get("/topics/{topic}/latest", [&s](request& req) { return s.latest(req, req.param("topic")); });
  // The same topics and sequence numbers as the push transports: a poll's cursor is an SSE event id.
  longpoll::add_route(routes, s.polls);
  routes.get("/ws", [&s](request& req) { return s.hub.rooms(req); });
  routes.get(page_path, [](request&) { return response::html(std::string(page)); });
}

}  // namespace examples::notifications
