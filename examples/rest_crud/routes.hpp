// The routes of the `rest_crud` example: users as a JSON resource, kept in memory.
//
//   GET    /users          list, in pages             200 (+ Link rel="next"), 400
//   POST   /users          create {"name", "email"}   201 + Location, 400, 409 (email taken), 422, 507 (full)
//   GET    /users/{id}     read                       200, 404
//   PUT    /users/{id}     replace {"name", "email"}  200, 400, 404, 409, 422
//   PATCH  /users/{id}     update some fields         200, 400, 404, 409, 422
//   DELETE /users/{id}     delete                     204, 404
//
// Errors are problem details (RFC 9457): 400 for a body that is not a JSON object, 422 for fields that are
// missing or invalid (with an "errors" member listing each), 404 for an unknown id, 409 for a duplicate email.
//
// Nothing a client sends grows without bound: the store holds at most `max_users` (507 Insufficient Storage past
// it, RFC 4918 §11.5), and the list comes in pages of at most 1,000 users (`?limit=N&after=ID`, default 100),
// the next page linked from a `Link: <...>; rel="next"` header (RFC 8288), so that one GET does not copy every
// user under the store's lock.
#pragma once

#include <switchboard/http/router.hpp>

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace examples::rest_crud {

struct user {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  nlohmann::json to_json() const { return {{"id", id}, {"name", name}, {"email", email}}; }
};

/// Why `user_store::save` did not save.
enum class save_refusal { email_taken, full, not_found };

/// The users, shared by every event-loop thread (hence the mutex), with an index of their emails so that checking
/// one is not a scan of every user.
class user_store {
 public:
  explicit user_store(std::size_t max_users = 10'000) : max_users_(max_users) {}

  /// Up to `limit` users with an id above `after`, in id order; `more` tells whether others follow them.
  std::vector<user> page(std::int64_t after, std::size_t limit, bool& more) const {
    std::lock_guard lock(mutex_);
    std::vector<user> out;
    auto it = users_.upper_bound(after);
    for (; it != users_.end() && out.size() < limit; ++it) out.push_back(it->second);
    more = it != users_.end();
    return out;
  }
  std::optional<user> find(std::int64_t id) const {
    std::lock_guard lock(mutex_);
    auto it = users_.find(id);
    if (it == users_.end()) return std::nullopt;
    return it->second;
  }
  /// Inserts `u` (id 0: it gets a new id) or replaces the user with its id (`not_found` if that user was deleted
  /// meanwhile: a PUT racing a DELETE does not bring the user back); nullopt on success.
  std::optional<save_refusal> save(user& u) {
    std::lock_guard lock(mutex_);
    if (const auto owner = by_email_.find(u.email); owner != by_email_.end() && owner->second != u.id) {
      return save_refusal::email_taken;
    }
    if (u.id == 0) {
      if (users_.size() >= max_users_) return save_refusal::full;
      u.id = next_id_++;
    } else {
      const auto old = users_.find(u.id);
      if (old == users_.end()) return save_refusal::not_found;
      by_email_.erase(old->second.email);
    }
    by_email_[u.email] = u.id;
    users_[u.id] = u;
    return std::nullopt;
  }
  bool erase(std::int64_t id) {
    std::lock_guard lock(mutex_);
    const auto it = users_.find(id);
    if (it == users_.end()) return false;
    by_email_.erase(it->second.email);
    users_.erase(it);
    return true;
  }

 private:
  const std::size_t max_users_;
  mutable std::mutex mutex_;
  std::map<std::int64_t, user> users_;
  std::unordered_map<std::string, std::int64_t> by_email_;
  std::int64_t next_id_ = 1;
};

namespace detail {

using switchboard::http::problem;
using switchboard::http::problem_error;
using switchboard::http::status;

// The request body as a JSON object, or a 400 problem.
inline const nlohmann::json& body_object(switchboard::http::request& req) {
  const nlohmann::json& body = req.json();  // throws a 400 problem for malformed JSON
  if (!body.is_object()) throw problem_error(status::bad_request, "The body must be a JSON object.");
  return body;
}

inline problem_error not_found(std::int64_t id) {
  return problem_error(status::not_found, "No user with id " + std::to_string(id) + ".");
}

// Applies `body` to `u`. With `partial` (PATCH) absent fields are kept; otherwise both are required.
inline void apply(const nlohmann::json& body, user& u, bool partial) {
  nlohmann::json errors = nlohmann::json::array();
  auto field = [&](const char* name, std::string& out, auto&& valid, const char* rule) {
    if (!body.contains(name)) {
      if (!partial) errors.push_back({{"field", name}, {"message", "is required"}});
      return;
    }
    const auto& v = body[name];
    if (!v.is_string() || !valid(v.get<std::string>())) {
      errors.push_back({{"field", name}, {"message", rule}});
      return;
    }
    out = v.get<std::string>();
  };
  field("name", u.name, [](const std::string& s) { return !s.empty() && s.size() <= 100; },
        "must be a string of 1 to 100 characters");
  field("email", u.email,
        [](const std::string& s) {
          const auto at = s.find('@');
          return at != std::string::npos && at > 0 && at + 1 < s.size() && s.size() <= 254;
        },
        "must be an email address");
  for (const auto& [key, value] : body.items()) {
    if (key != "name" && key != "email" && key != "id") errors.push_back({{"field", key}, {"message", "is not a field of a user"}});
  }
  if (!errors.empty()) {
    throw problem_error(problem{.type = "about:blank",
                                .status = status::unprocessable_content,
                                .title = "Invalid user",
                                .detail = "Some fields are missing or invalid.",
                                .extensions = {{"errors", errors}}});
  }
}

// The problem for a refused save of user `id`.
inline problem_error refused(save_refusal why, std::int64_t id) {
  switch (why) {
    case save_refusal::full: return problem_error(status::insufficient_storage, "The user store is full.");
    case save_refusal::not_found: return not_found(id);
    case save_refusal::email_taken: break;
  }
  return problem_error(status::conflict, "Another user has this email.");
}

// Query parameter `name` as an integer in [min, max], `fallback` when absent, else a 400 problem.
inline std::int64_t query_integer(const switchboard::http::request& req, std::string_view name, std::int64_t fallback,
                                  std::int64_t min, std::int64_t max) {
  const auto text = req.query_param(name);
  if (!text) return fallback;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    throw problem_error(status::bad_request, "Query parameter '" + std::string(name) + "' must be an integer from " +
                                                 std::to_string(min) + " to " + std::to_string(max) + ".");
  }
  return value;
}

}  // namespace detail

inline void add_routes(switchboard::http::router& routes, user_store& store) {
  using namespace switchboard::http;
  routes.get("/users", [&store](request& req) {
    const auto limit = detail::query_integer(req, "limit", 100, 1, 1000);
    const auto after = detail::query_integer(req, "after", 0, 0, std::numeric_limits<std::int64_t>::max());
    bool more = false;
    nlohmann::json list = nlohmann::json::array();
    for (const user& u : store.page(after, static_cast<std::size_t>(limit), more)) list.push_back(u.to_json());
    response r = response::json(list);
    if (more) {
      r.set("Link", "</users?after=" + std::to_string(list.back()["id"].get<std::int64_t>()) +
                        "&limit=" + std::to_string(limit) + ">; rel=\"next\"");
    }
    return r;
  });
  routes.post("/users", [&store](request& req) {
    user u;
    detail::apply(detail::body_object(req), u, false);
    if (const auto refusal = store.save(u)) throw detail::refused(*refusal, u.id);
    response r = response::json(u.to_json(), status::created);
    r.set("Location", "/users/" + std::to_string(u.id));
    return r;
  });
  routes.get("/users/{id:int}", [&store](request& req) {
    const auto id = req.param_as<std::int64_t>("id");
    auto u = store.find(id);
    if (!u) throw detail::not_found(id);
    return response::json(u->to_json());
  });
  auto update = [&store](bool partial) {
    return [&store, partial](request& req) {
      const auto id = req.param_as<std::int64_t>("id");
      const nlohmann::json& body = detail::body_object(req);
      auto u = store.find(id);
      if (!u) throw detail::not_found(id);
      user changed = partial ? *u : user{.id = id};
      detail::apply(body, changed, partial);
      if (const auto refusal = store.save(changed)) throw detail::refused(*refusal, id);
      return response::json(changed.to_json());
    };
  };
  routes.put("/users/{id:int}", update(false));
  routes.patch("/users/{id:int}", update(true));
  routes.del("/users/{id:int}", [&store](request& req) {
    const auto id = req.param_as<std::int64_t>("id");
    if (!store.erase(id)) throw detail::not_found(id);
    return response(status::no_content);
  });
}

}  // namespace examples::rest_crud
