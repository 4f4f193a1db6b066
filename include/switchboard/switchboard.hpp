// switchboard/switchboard.hpp: the umbrella header. Includes every public header of the library.
// Prefer the individual headers in your own code to keep compile times low.
#pragma once

#include <switchboard/version.hpp>

#include <switchboard/core/async_queue.hpp>
#include <switchboard/core/bounded_queue.hpp>
#include <switchboard/core/drain.hpp>
#include <switchboard/core/error.hpp>
#include <switchboard/core/log.hpp>
#include <switchboard/core/metrics.hpp>
#include <switchboard/core/overflow_policy.hpp>
#include <switchboard/core/runtime.hpp>
#include <switchboard/core/shared_bytes.hpp>
#include <switchboard/core/utf8.hpp>

#include <switchboard/net/listener.hpp>

#include <switchboard/http/body_writer.hpp>
#include <switchboard/http/chunked_decoder.hpp>
#include <switchboard/http/client.hpp>
#include <switchboard/http/conditional.hpp>
#include <switchboard/http/date.hpp>
#include <switchboard/http/error.hpp>
#include <switchboard/http/etag.hpp>
#include <switchboard/http/fields.hpp>
#include <switchboard/http/handler.hpp>
#include <switchboard/http/header_block.hpp>
#include <switchboard/http/method.hpp>
#include <switchboard/http/parser.hpp>
#include <switchboard/http/preconditions.hpp>
#include <switchboard/http/problem.hpp>
#include <switchboard/http/request.hpp>
#include <switchboard/http/response.hpp>
#include <switchboard/http/router.hpp>
#include <switchboard/http/server.hpp>
#include <switchboard/http/server_options.hpp>
#include <switchboard/http/status.hpp>
#include <switchboard/http/url.hpp>

#include <switchboard/resp/client.hpp>
#include <switchboard/resp/command_parser.hpp>
#include <switchboard/resp/encoder.hpp>
#include <switchboard/resp/error.hpp>
#include <switchboard/resp/hash_slot.hpp>
#include <switchboard/resp/reply_parser.hpp>
#include <switchboard/resp/value.hpp>

#include <switchboard/sse/encoder.hpp>
#include <switchboard/sse/error.hpp>
#include <switchboard/sse/event.hpp>
#include <switchboard/sse/parser.hpp>
#include <switchboard/sse/stream.hpp>
#include <switchboard/push/encoding.hpp>
#include <switchboard/push/hub.hpp>
#include <switchboard/push/latest.hpp>
#include <switchboard/push/outbox.hpp>

#include <switchboard/pubsub/broker.hpp>
#include <switchboard/pubsub/glob.hpp>
#include <switchboard/pubsub/observer.hpp>
#include <switchboard/pubsub/pattern_index.hpp>
#include <switchboard/pubsub/redis_bridge.hpp>
#include <switchboard/pubsub/resp_server.hpp>
#include <switchboard/longpoll/client.hpp>
#include <switchboard/longpoll/endpoint.hpp>
#include <switchboard/jobs/endpoint.hpp>
#include <switchboard/jobs/offload.hpp>
#include <switchboard/jobs/worker_pool.hpp>

#include <switchboard/ws/accept.hpp>
#include <switchboard/ws/connect.hpp>
#include <switchboard/ws/deflate.hpp>
#include <switchboard/ws/error.hpp>
#include <switchboard/ws/extensions.hpp>
#include <switchboard/ws/frame.hpp>
#include <switchboard/ws/frame_parser.hpp>
#include <switchboard/ws/frame_writer.hpp>
#include <switchboard/ws/handshake.hpp>
#include <switchboard/ws/mask.hpp>
#include <switchboard/ws/session.hpp>
#include <switchboard/ws/session_group.hpp>
