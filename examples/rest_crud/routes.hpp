// The routes of the `rest_crud` example: users as a JSON resource, kept in memory.
//
//   GET    /users          list                       200
//   POST   /users          create {"name", "email"}   201 + Location, 400, 409 (email taken), 422
//   GET    /users/{id}     read                       200, 404
//   PUT    /users/{id}     replace {"name", "email"}  200, 400, 404, 409, 422
//   PATCH  /users/{id}     update some fields         200, 400, 404, 409, 422
//   DELETE /users/{id}     delete                     204, 404
//
// Errors are problem details (RFC 9457): 400 for a body that is not a JSON object, 422 for fields that are
// missing or invalid (with an "errors" member listing each), 404 for an unknown id, 409 for a duplicate email.
#pragma once

#include <switchboard/http/router.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace examples::rest_crud {

struct user {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  nlohmann::json to_json() const { return {{"id", id}, {"name", name}, {"email", email}}; }
};

/// The users, shared by every event-loop thread (hence the mutex).
class user_store {
 public:
  nlohmann::json list() const {
    std::lock_guard lock(mutex_);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [id, u] : users_) out.push_back(u.to_json());
    return out;
  }
  std::optional<user> find(std::int64_t id) const {
    std::lock_guard lock(mutex_);
    auto it = users_.find(id);
    if (it == users_.end()) return std::nullopt;
    return it->second;
  }
  /// Inserts (id 0) or replaces; nullopt if another user has the email.
  std::optional<user> save(user u) {
    std::lock_guard lock(mutex_);
    for (const auto& [id, other] : users_) {
      if (other.email == u.email && id != u.id) return std::nullopt;
    }
    if (u.id == 0) u.id = next_id_++;
    users_[u.id] = u;
    return u;
  }
  bool erase(std::int64_t id) {
    std::lock_guard lock(mutex_);
    return users_.erase(id) > 0;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::int64_t, user> users_;
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

inline problem_error not_found(std::int64_t id) {
  return problem_error(status::not_found, "No user with id " + std::to_string(id) + ".");
}
inline problem_error email_taken() { return problem_error(status::conflict, "Another user has this email."); }

}  // namespace detail

inline void add_routes(switchboard::http::router& routes, user_store& store) {
  using namespace switchboard::http;
  routes.get("/users", [&store](request&) { return response::json(store.list()); });
  routes.post("/users", [&store](request& req) {
    user u;
    detail::apply(detail::body_object(req), u, false);
    auto saved = store.save(u);
    if (!saved) throw detail::email_taken();
    response r = response::json(saved->to_json(), status::created);
    r.set("Location", "/users/" + std::to_string(saved->id));
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
      auto saved = store.save(changed);
      if (!saved) throw detail::email_taken();
      return response::json(saved->to_json());
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
