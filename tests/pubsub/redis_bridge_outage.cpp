// The Redis bridge under Redis outages at random points, checked against a model of what docs/pubsub.md
// ("Scale-out") promises. Three bridged brokers ("processes", one speaking RESP2) with exact, pattern and slow
// subscribers (drop_oldest, drop_newest and wait queues read at the test's pace) publish random messages while the
// test stops Redis (SIGTERM or SIGKILL) and starts it again on the same port, keeps it down until the outgoing
// queues overflow, cuts one connection of one bridge, cuts every subscribing connection, or locks one bridge out
// (a password set in Redis, its connections cut) while the others stay connected. Then, for every subscriber:
//  - each topic's sequence numbers are covered once by messages and gaps, in the broker's one numbering;
//  - no message twice; each origin's messages of a topic in the order it published them;
//  - every message published locally delivered locally (without the origin header; remote ones carry theirs);
//  - a remote message is delivered, or an upstream gap lies where it would have been, or it is one of those its
//    publisher counted in `dropped_outgoing` (no more of those than the count);
//  - one upstream gap per outage of its process, for every topic: after the messages published before the outage
//    and received before it, before those published once it was over;
//  - what was published while everything was connected, and waited for, arrived everywhere;
//  - a bridge that is down longer keeps the newest `max_outgoing` of its messages, and sends them when it is back.
// And the bridges' counters agree: outages and reconnections as caused, `sent + dropped_outgoing` = published,
// `received` = remote messages delivered, nodes up, channels and patterns as subscribed.
//
// Every wait is on an observable state with a deadline. The seed of a failing run is printed (INFO) to replay it.
#include <switchboard/pubsub/redis_bridge.hpp>

#include "pubsub/broker_support.hpp"
#include "pubsub/redis_bridge_support.hpp"
#include "support/catch.hpp"
#include "support/redis_server.hpp"
#include "support/test_support.hpp"

#include <switchboard/pubsub/glob.hpp>

#include <asio/error.hpp>
#include <asio/io_context.hpp>

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::pubsub;
using switchboard::pubsub::test::peer;
using switchboard::pubsub::test::text;
using switchboard::test::run_until;

namespace {

constexpr int processes = 3;
constexpr std::size_t max_outgoing = 12;  // each bridge's outgoing queue: small, so that outages overflow it
const std::vector<std::string> topics{"t0", "t1", "t2", "u1", "v"};

/// A subscription of the scenario: a topic or pattern, delivered to a callback, or read with `async_receive` at the
/// test's pace from a queue of 3 with `slow` as its policy.
struct subscriber_spec {
  std::string name;
  std::optional<overflow_policy> slow{};
};

// The first of each process is "*" by callback: its full view, against which the others are compared. Process 2
// publishes with async_publish (its `wait` subscriber can hold publishers up); 0 and 1 with publish.
const std::array<std::vector<subscriber_spec>, processes> scenario{{
    {{"*"}, {"t0"}, {"t1"}, {"t*"}, {"t*", overflow_policy::drop_oldest}},
    {{"*"}, {"t1"}, {"u1"}, {"t[01]"}, {"u?"}, {"t1", overflow_policy::drop_newest}},
    {{"*"}, {"t2"}, {"t*"}, {"?1"}, {"*", overflow_policy::wait}},
}};

bool is_pattern(const std::string& name) { return name.find_first_of("*?[") != std::string::npos; }

/// One event as a subscriber received it.
struct seen {
  std::string topic;
  std::uint64_t first = 0, last = 0;  // a message: its sequence number twice
  bool is_gap = false;
  gap_reason reason{};
  std::string payload;
  std::string origin;  // the switchboard-origin header, empty when absent
};

/// One subscription and what it received.
struct listener {
  subscriber_spec spec;
  std::vector<seen> events;
  std::vector<std::string> errors;
  std::map<std::string, std::uint64_t> through;  // by topic: the highest sequence number received (message or gap)
  std::unordered_set<std::string> payloads;
  subscription s;
  bool stalled = false;    // slow readers: not reading now
  bool receiving = false;  // slow readers: an async_receive waits

  void record(std::error_code ec, const event& e) {
    if (ec) {
      errors.push_back(ec.message());
      return;
    }
    seen x;
    if (e.is_gap()) {
      x = seen{e.gap().topic, e.gap().first, e.gap().last, true, e.gap().reason, {}, {}};
    } else {
      const message& m = e.message();
      x = seen{std::string(m.topic()), m.sequence(), m.sequence(), false, {}, std::string(m.data()),
               std::string(m.header("switchboard-origin").value_or(""))};
      payloads.insert(x.payload);
    }
    std::uint64_t& t = through[x.topic];
    t = std::max(t, x.last);
    events.push_back(std::move(x));
  }

  // Slow readers: one receive after the other while not stalled.
  void read_on() {
    if (!spec.slow || stalled || receiving || !s) return;
    receiving = true;
    s.async_receive([this](std::error_code ec, event e) {
      receiving = false;
      if (ec == asio::error::operation_aborted) return;  // unsubscribed at the end
      record(ec, e);
      if (!ec) read_on();
    });
  }
};

/// A process: its listeners (declared first: they outlive the broker, whose last callbacks they receive) and its
/// broker with a bridge.
struct process {
  std::vector<std::unique_ptr<listener>> listeners;
  std::unique_ptr<peer> p;
  std::size_t channels = 0, patterns = 0;  // what its bridge subscribes to in Redis
};

/// One message the test published.
struct sent {
  std::string topic;
  std::string payload;  // "<origin>:<topic>:<n>", n its index in the origin's list
  bool done = false;    // published (process 2: its async_publish completed)
  // The steady period it was published in (0: none): every bridge connected and subscribed, nothing of an earlier
  // outage still on its way, no outage since. For process 2 both when it called and when it was published.
  int window = 0;
  std::array<std::uint64_t, processes> outages_at{};  // each process's outages caused so far, when it was published
  bool must_arrive = false;      // every other process must have it: see `settle`, and the lock-out
  bool must_not_arrive = false;  // dropped for sure: older than the newest `max_outgoing` of a long outage or
                                 // a lock-out
};

/// What one sequence number of a topic was, for one subscriber.
struct slot {
  int times = 0;  // how many events covered it (must be 1)
  bool is_gap = false;
  gap_reason reason{};
  std::string payload, origin;
};

struct problems {
  std::vector<std::string> lines;
  std::size_t count = 0;
  void add(std::string line) {
    if (lines.size() < 30) lines.push_back(std::move(line));
    ++count;
  }
  std::string text() const {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    if (count > lines.size()) out += "... and " + std::to_string(count - lines.size()) + " more\n";
    return out;
  }
};

/// True when `pid` is a child of this process (the redis-server started by the test), by /proc/<pid>/stat.
bool is_our_child(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const std::size_t paren = line.rfind(')');  // the command name may hold spaces; the fields after it do not
  if (paren == std::string::npos) return false;
  std::istringstream rest(line.substr(paren + 1));
  char state = 0;
  pid_t parent = 0;
  rest >> state >> parent;
  return parent == ::getpid();
}

class outage_run {
 public:
  explicit outage_run(std::uint32_t seed) : rng_(seed) {
    redis_ = std::make_unique<switchboard::test::redis_server>();
    port_ = redis_->port();
    control_ = std::make_unique<switchboard::test::redis_client>(control_ctx_, port_);
    for (int i = 0; i < processes; ++i) {
      process& pr = procs_[i];
      redis_bridge_options o = pubsub::test::to(port_);
      o.initial_backoff = 2ms;
      o.max_backoff = 20ms;
      o.max_outgoing = max_outgoing;
      o.redis.client_name = "process" + std::to_string(i);  // to find its connections in CLIENT LIST
      if (i == 1) o.redis.protocol = 2;
      std::set<std::string> channels, patterns;
      for (const subscriber_spec& spec : scenario[i]) {
        auto l = std::make_unique<listener>();
        l->spec = spec;
        pr.listeners.push_back(std::move(l));
        (is_pattern(spec.name) ? patterns : channels).insert(spec.name);
      }
      pr.channels = channels.size();
      pr.patterns = patterns.size();
      pr.p = std::make_unique<peer>(ctx_, o);
      // Every topic exists from the start, so that every outage reaches each of them with a gap.
      for (const std::string& t : topics) pr.p->b.set_retention(t, {});
      for (auto& l : pr.listeners) {
        subscription_options so;
        if (l->spec.slow) {
          so.limits = queue_limits{.max_messages = 3, .max_bytes = 1 << 20, .policy = *l->spec.slow};
        } else {
          so.on_event = [lp = l.get()](std::error_code ec, const event& e) { lp->record(ec, e); };
        }
        l->s = is_pattern(l->spec.name) ? pr.p->b.subscribe_pattern(l->spec.name, std::move(so))
                                        : pr.p->b.subscribe(l->spec.name, std::move(so));
        l->read_on();
      }
    }
  }

  outage_run(const outage_run&) = delete;
  outage_run& operator=(const outage_run&) = delete;

  ~outage_run() {
    // The slow readers' receives end (operation_aborted) while their listeners are still there.
    for (process& pr : procs_) {
      for (auto& l : pr.listeners) l->s.unsubscribe();
    }
    switchboard::test::poll(ctx_);
  }

  void run() {
    REQUIRE(run_until(ctx_, [&] { return steady_now(); }));
    window_ = ++windows_;
    // Each kind of outage once, the lock-out twice (at two different processes), in a random order, each after
    // random publishes, and after waiting for them or not.
    enum class outage { sigterm, sigkill, long_down, lock_out, cut_connection, cut_subscribers };
    std::vector<outage> plan{outage::sigterm,  outage::sigkill,        outage::long_down,      outage::lock_out,
                             outage::lock_out, outage::cut_connection, outage::cut_subscribers};
    std::shuffle(plan.begin(), plan.end(), rng_);
    int lockouts = 0;
    const int first_locked = pick(processes);
    for (const outage o : plan) {
      random_steps(10 + pick(25));
      if (pick(2) == 0) settle();
      switch (o) {
        case outage::sigterm: restart(false); break;
        case outage::sigkill: restart(true); break;
        case outage::long_down: long_outage(); break;
        case outage::lock_out: lock_out((first_locked + lockouts++) % processes); break;
        case outage::cut_connection: cut_one_connection(pick(processes)); break;
        case outage::cut_subscribers: cut_subscribers(); break;
      }
    }
    random_steps(10 + pick(20));
    finish();
    check();
  }

 private:
  // --- The script ---

  int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint32_t>(n)); }

  redis_bridge_stats stats(int i) const { return procs_[i].p->bridge.stats(); }
  broker& b(int i) { return procs_[i].p->b; }
  listener& full_view(int i) { return *procs_[i].listeners[0]; }

  // Every outage the test caused has been seen and is over: each bridge connected again (and counted the outage).
  bool all_back() const {
    for (int i = 0; i < processes; ++i) {
      const auto s = stats(i);
      if (s.nodes_up != 1 || s.outages != predicted_[i]) return false;
    }
    return true;
  }

  bool subscribed(int i) const {
    const auto s = stats(i);
    return s.channels == procs_[i].channels && s.patterns == procs_[i].patterns;
  }

  // Everything the process published has gone to Redis or been dropped (nothing waits or is in flight).
  bool acked(int i) const {
    const auto s = stats(i);
    return s.sent + s.dropped_outgoing == completed_[i];
  }

  // A steady period can begin: every bridge connected and subscribed after the last outage, and nothing published
  // before it still on its way (process 2 has no publish waiting for its `wait` subscriber).
  bool steady_now() const {
    if (redis_down_ || locked_ >= 0 || pending_async_ != 0 || !all_back()) return false;
    for (int i = 0; i < processes; ++i) {
      if (!subscribed(i) || !acked(i)) return false;
    }
    return true;
  }

  void note_outage_caused() {
    window_ = 0;
    unsettled_.clear();
    window_count_.fill(0);
  }

  void publish(int from, const std::string& topic) {
    std::vector<sent>& list = sent_[from];
    const std::size_t n = list.size();
    sent m;
    m.topic = topic;
    m.payload = std::to_string(from) + ":" + topic + ":" + std::to_string(n);
    m.window = window_;
    m.outages_at = predicted_;
    list.push_back(m);
    if (window_ != 0) {
      unsettled_.push_back({from, n});
      ++window_count_[from];
    }
    if (from == 2) {
      ++pending_async_;
      b(from).async_publish(topic, text(m.payload), [this, from, n](std::error_code ec, std::uint64_t) {
        --pending_async_;
        sent& s = sent_[from][n];
        if (ec) {
          problems_.add("async_publish of " + s.payload + " failed: " + ec.message());
          return;
        }
        s.done = true;
        if (s.window != window_) s.window = 0;  // the period ended before it was published
        ++completed_[from];
        admitted_[from].push_back(n);
      });
    } else {
      REQUIRE(b(from).publish(topic, text(m.payload)));
      list[n].done = true;
      ++completed_[from];
      admitted_[from].push_back(n);
    }
  }

  void publish_random(int from) { publish(from, topics[static_cast<std::size_t>(pick(int(topics.size())))]); }

  void set_stalled(listener& l, bool stalled) {
    l.stalled = stalled;
    l.read_on();
  }

  void flow_all() {
    for (process& pr : procs_) {
      for (auto& l : pr.listeners) set_stalled(*l, false);
    }
  }

  std::vector<listener*> slow_listeners() {
    std::vector<listener*> out;
    for (process& pr : procs_) {
      for (auto& l : pr.listeners) {
        if (l->spec.slow) out.push_back(l.get());
      }
    }
    return out;
  }

  // Publishes, runs handlers, waits for one process's messages to reach Redis, stalls and releases slow readers.
  // Begins a steady period when one can begin; settles it before its processes have `max_outgoing / 2` messages
  // in it (fewer than `max_outgoing` unacknowledged, so that none may be dropped).
  void random_steps(int count, bool publish_only = false) {
    for (int step = 0; step < count; ++step) {
      if (window_ == 0 && steady_now()) window_ = ++windows_;
      if (window_ != 0 && *std::max_element(window_count_.begin(), window_count_.end()) >= max_outgoing / 2) {
        settle();
      }
      const int r = pick(publish_only ? 75 : 100);
      if (r < 45) {
        publish_random(pick(processes));
      } else if (r < 60) {
        const int from = pick(processes);
        for (int k = 0, burst = 2 + pick(2); k < burst; ++k) publish_random(from);  // no handler runs between
      } else if (r < 75) {
        switchboard::test::poll(ctx_);
      } else if (r < 88) {
        // Until what process i published has reached Redis, or it is disconnected.
        const int i = pick(processes);
        REQUIRE(run_until(ctx_, [&] { return acked(i) || stats(i).nodes_up == 0; }));
      } else {
        const auto slow = slow_listeners();
        listener& l = *slow[static_cast<std::size_t>(pick(int(slow.size())))];
        set_stalled(l, !l.stalled);
      }
    }
  }

  // Waits until every message that must arrive has arrived everywhere and every process's messages reached Redis.
  // In a steady period, what was published in it so far must then arrive too: every bridge is connected and
  // subscribed, and none has `max_outgoing` messages unacknowledged.
  void settle() {
    flow_all();
    REQUIRE(run_until(ctx_, [&] { return pending_async_ == 0; }));
    if (window_ != 0) {
      for (const auto& [from, n] : unsettled_) {
        sent& m = sent_[from][n];
        if (m.window == window_) {
          m.must_arrive = true;
          must_arrive_.push_back({from, n});
        }
      }
      unsettled_.clear();
      window_count_.fill(0);
    }
    const bool done = run_until(ctx_, [&] {
      for (int i = 0; i < processes; ++i) {
        if (!acked(i)) return false;
      }
      std::erase_if(must_arrive_, [&](const std::pair<int, std::size_t>& e) {
        for (int i = 0; i < processes; ++i) {
          if (i != e.first && !full_view(i).payloads.count(sent_[e.first][e.second].payload)) return false;
        }
        return true;
      });
      return must_arrive_.empty();
    });
    if (done) return;
    // The final check says what did not arrive where.
    for (int i = 0; i < processes; ++i) {
      if (!acked(i)) problems_.add("process " + std::to_string(i) + ": messages neither sent nor dropped");
    }
    must_arrive_.clear();
    INFO(trace());
    FAIL_CHECK("messages that had to arrive did not");
  }

  // Before an outage: every bridge is connected, and has counted every earlier outage (so that each bridge
  // connected now has exactly one outage more when this one is over).
  void wait_all_back(bool and_subscribed) {
    REQUIRE(run_until(ctx_, [&] {
      if (!all_back()) return false;
      for (int i = 0; i < processes && and_subscribed; ++i) {
        if (!subscribed(i)) return false;
      }
      return true;
    }));
  }

  void start_redis() {
    redis_ = std::make_unique<switchboard::test::redis_server>(port_, std::vector<std::string>{});
    control_ = std::make_unique<switchboard::test::redis_client>(control_ctx_, port_);
    redis_down_ = false;
  }

  void stop_redis(bool sigkill) {
    if (sigkill) {
      const std::string info = control_->call({"INFO", "server"}).text;
      const std::size_t at = info.find("process_id:");
      REQUIRE(at != std::string::npos);
      const pid_t pid = static_cast<pid_t>(std::stol(info.substr(at + 11)));
      REQUIRE(is_our_child(pid));
      control_.reset();
      REQUIRE(::kill(pid, SIGKILL) == 0);
    }
    control_.reset();
    redis_.reset();  // SIGTERM (or reaps the killed one)
    redis_down_ = true;
  }

  void cause_outage(int i) { ++predicted_[static_cast<std::size_t>(i)]; }

  // Redis stops (SIGTERM or SIGKILL) and starts again on the same port, with publishes meanwhile.
  void restart(bool sigkill) {
    wait_all_back(false);
    trace_.push_back(sigkill ? "SIGKILL" : "SIGTERM");
    note_outage_caused();
    stop_redis(sigkill);
    for (int i = 0; i < processes; ++i) cause_outage(i);
    random_steps(pick(8), true);
    start_redis();
    trace_.push_back("restarted");
  }

  // Redis stays down while each process publishes more than `max_outgoing` messages: the oldest are dropped and
  // counted, the newest are sent once it is back.
  void long_outage() {
    wait_all_back(false);
    trace_.push_back("long outage");
    note_outage_caused();
    stop_redis(false);
    for (int i = 0; i < processes; ++i) cause_outage(i);
    REQUIRE(run_until(ctx_, [&] {
      for (int i = 0; i < processes; ++i) {
        if (stats(i).nodes_up != 0) return false;
      }
      return true;
    }));
    flow_all();
    switchboard::test::poll(ctx_);  // the failed PUBLISH commands of the lost connections are counted
    std::array<std::uint64_t, processes> dropped_before{};
    std::array<std::size_t, processes> first{}, count{};
    for (int i = 0; i < processes; ++i) {
      dropped_before[i] = stats(i).dropped_outgoing;
      first[i] = admitted_[i].size();
      count[i] = max_outgoing + 1 + static_cast<std::size_t>(pick(int(max_outgoing)));
    }
    publish_chunks(count);
    for (int i = 0; i < processes; ++i) {
      INFO("process " << i << " published " << count[i] << " while Redis was down");
      // At least all but `max_outgoing` of them are dropped (and counted), the oldest first.
      CHECK(run_until(ctx_, [&] { return stats(i).dropped_outgoing - dropped_before[i] >= count[i] - max_outgoing; }));
      const std::size_t admitted = admitted_[i].size() - first[i];
      REQUIRE(admitted == count[i]);
      for (std::size_t k = 0; k + max_outgoing < admitted; ++k) {
        sent_[i][admitted_[i][first[i] + k]].must_not_arrive = true;
      }
    }
    start_redis();
    trace_.push_back("restarted");
  }

  // `count[i]` messages from each process, in chunks of random sizes (up to a few more than `max_outgoing`)
  // published without running a handler in between, then the handlers.
  void publish_chunks(std::array<std::size_t, processes> count) {
    for (bool more = true; more;) {
      more = false;
      for (int i = 0; i < processes; ++i) {
        const std::size_t chunk = std::min(count[i], std::size_t(1 + pick(int(max_outgoing) + 4)));
        for (std::size_t k = 0; k < chunk; ++k) publish_random(i);
        count[i] -= chunk;
        more = more || count[i] > 0;
      }
      switchboard::test::poll(ctx_);
    }
    REQUIRE(run_until(ctx_, [&] { return pending_async_ == 0; }));
  }

  // The ids of process i's connections, newest first (CLIENT LIST; ids grow with each connection).
  std::vector<std::string> connections_of(int i) {
    const std::string name = "name=process" + std::to_string(i) + " ";
    std::vector<std::uint64_t> ids;
    std::istringstream lines(control_->call({"CLIENT", "LIST"}).text);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("id=", 0) == 0 && line.find(name) != std::string::npos) ids.push_back(std::stoull(line.substr(3)));
    }
    std::sort(ids.rbegin(), ids.rend());
    std::vector<std::string> out;
    for (std::uint64_t id : ids) out.push_back(std::to_string(id));
    return out;
  }

  // Redis cuts one of process i's two connections (publishing or subscribing): its bridge closes the other,
  // reconnects, and reports the outage; the other processes see nothing.
  void cut_one_connection(int i) {
    wait_all_back(false);
    const std::vector<std::string> ids = connections_of(i);
    REQUIRE(ids.size() >= 2);
    trace_.push_back("cut a connection of process " + std::to_string(i));
    note_outage_caused();
    CHECK(control_->call({"CLIENT", "KILL", "ID", ids[static_cast<std::size_t>(pick(2))]}).integer == 1);
    cause_outage(i);
  }

  // Redis cuts every subscribing connection.
  void cut_subscribers() {
    wait_all_back(true);  // subscribed: a connection counts as a subscriber once Redis has its subscriptions
    trace_.push_back("cut every subscriber");
    note_outage_caused();
    CHECK(control_->call({"CLIENT", "KILL", "TYPE", "pubsub"}).integer >= processes);
    for (int i = 0; i < processes; ++i) cause_outage(i);
  }

  // Process i is locked out (Redis asks for a password it does not have, its connections are cut) while the
  // others stay connected and subscribed; it publishes more than `max_outgoing` messages meanwhile. Once it is let
  // in, every other process receives exactly the newest `max_outgoing` of them.
  void lock_out(int i) {
    wait_all_back(true);
    trace_.push_back("lock out process " + std::to_string(i));
    note_outage_caused();
    CHECK(control_->call({"CONFIG", "SET", "requirepass", "not-for-bridges"}).text == "OK");
    const std::vector<std::string> ids = connections_of(i);
    REQUIRE(ids.size() >= 2);
    CHECK(control_->call({"CLIENT", "KILL", "ID", ids[static_cast<std::size_t>(pick(2))]}).integer == 1);
    cause_outage(i);
    locked_ = i;
    REQUIRE(run_until(ctx_, [&] { return stats(i).nodes_up == 0; }));
    flow_all();
    switchboard::test::poll(ctx_);  // the failed PUBLISH commands of the lost connection are counted
    const std::uint64_t dropped_before = stats(i).dropped_outgoing;
    const std::size_t first = admitted_[i].size();
    std::array<std::size_t, processes> count{};
    count[static_cast<std::size_t>(i)] = max_outgoing + 1 + static_cast<std::size_t>(pick(int(max_outgoing)));
    for (int k = 0; k < processes; ++k) {
      if (k != i) count[static_cast<std::size_t>(k)] = static_cast<std::size_t>(pick(6));  // lost at i: a gap
    }
    publish_chunks(count);
    const std::size_t n = count[static_cast<std::size_t>(i)];
    INFO("process " << i << " published " << n << " while locked out");
    CHECK(run_until(ctx_, [&] { return stats(i).dropped_outgoing - dropped_before >= n - max_outgoing; }));
    REQUIRE(admitted_[i].size() - first == n);
    for (std::size_t k = 0; k < n; ++k) {
      sent& m = sent_[i][admitted_[i][first + k]];
      if (k + max_outgoing < n) {
        m.must_not_arrive = true;
      } else {
        m.must_arrive = true;
        must_arrive_.push_back({i, admitted_[i][first + k]});
      }
    }
    for (int k = 0; k < processes; ++k) {
      if (k != i) CHECK(stats(k).nodes_up == 1);
    }
    CHECK(control_->call({"CONFIG", "SET", "requirepass", ""}).text == "OK");
    locked_ = -1;
    trace_.push_back("let in");
    settle();
  }

  // The end: every bridge back and subscribed; a last message from every process to every topic, which arrives
  // after everything its process published before (so that nothing is still on its way); every slow reader has
  // read everything.
  void finish() {
    flow_all();
    REQUIRE(run_until(ctx_, [&] { return steady_now(); }));
    if (window_ == 0) window_ = ++windows_;
    for (int i = 0; i < processes; ++i) {
      for (const std::string& t : topics) publish(i, t);
    }
    settle();
    REQUIRE(run_until(ctx_, [&] {
      for (int i = 0; i < processes; ++i) {
        for (auto& l : procs_[i].listeners) {
          for (const std::string& t : topics) {
            if (glob_match(l->spec.name, t) && l->through[t] != b(i).last_sequence(t)) return false;
          }
        }
      }
      return true;
    }));
    switchboard::test::poll(ctx_);  // anything more (a duplicate) that was on its way
  }

  // --- The checks ---

  // A subscriber's events on `topic` by sequence number, 1 to `last`.
  std::vector<slot> by_number(const listener& l, const std::string& topic, std::uint64_t last, const std::string& who) {
    std::vector<slot> out(last + 1);
    for (const seen& e : l.events) {
      if (e.topic != topic) continue;
      if (e.last > last || e.first == 0 || e.first > e.last) {
        problems_.add(who + ": " + topic + " numbers " + std::to_string(e.first) + "-" + std::to_string(e.last) +
                      " past the last, " + std::to_string(last));
        continue;
      }
      for (std::uint64_t s = e.first; s <= e.last; ++s) {
        slot& x = out[s];
        ++x.times;
        x.is_gap = e.is_gap;
        x.reason = e.reason;
        x.payload = e.payload;
        x.origin = e.origin;
      }
    }
    for (std::uint64_t s = 1; s <= last; ++s) {
      if (out[s].times != 1) {
        problems_.add(who + ": " + topic + "#" + std::to_string(s) + " received " + std::to_string(out[s].times) +
                      " times");
      }
    }
    return out;
  }

  void check() {
    // Where each message was delivered in each process's full view (its sequence number there, 0: not delivered).
    std::array<std::array<std::vector<std::uint64_t>, processes>, processes> at{};
    // Each process's upstream gap numbers, by topic.
    std::array<std::map<std::string, std::vector<std::uint64_t>>, processes> upstream{};
    std::array<std::set<std::size_t>, processes> unexplained{};  // by origin: missing without a gap at the place
    for (int p = 0; p < processes; ++p) {
      for (int o = 0; o < processes; ++o) at[p][o].assign(sent_[o].size(), 0);
    }

    for (int p = 0; p < processes; ++p) {
      const std::string who = "process " + std::to_string(p);
      std::unordered_set<std::string> payloads;
      std::uint64_t remote = 0;
      std::map<std::string, std::vector<slot>> full;  // the full view by topic and sequence number
      for (const std::string& t : topics) {
        const std::uint64_t last = b(p).last_sequence(t);
        const std::vector<slot>& view = full[t] = by_number(full_view(p), t, last, who + " *");
        std::array<std::size_t, processes> previous{};  // by origin: 1 + the index of the last message seen
        for (std::uint64_t s = 1; s <= last; ++s) {
          const slot& x = view[s];
          if (x.times != 1) continue;
          if (x.is_gap) {
            if (x.reason == gap_reason::upstream) {
              upstream[p][t].push_back(s);
            } else {
              problems_.add(who + " *: " + t + "#" + std::to_string(s) + " a " + std::string(to_string(x.reason)) +
                            " gap");
            }
            continue;
          }
          // "<origin>:<topic>:<n>"
          const std::size_t c1 = x.payload.find(':'), c2 = x.payload.rfind(':');
          const int o = std::stoi(x.payload.substr(0, c1));
          const std::size_t n = std::stoull(x.payload.substr(c2 + 1));
          const std::string where = who + ": " + t + "#" + std::to_string(s) + "=" + x.payload;
          if (o < 0 || o >= processes || n >= sent_[o].size() || sent_[o][n].payload != x.payload ||
              sent_[o][n].topic != t) {
            problems_.add(where + ": never published to " + t);
            continue;
          }
          if (!payloads.insert(x.payload).second) problems_.add(where + ": delivered twice");
          const std::string expected_origin = o == p ? "" : procs_[o].p->bridge.origin();
          if (x.origin != expected_origin) problems_.add(where + ": origin header \"" + x.origin + "\"");
          if (o != p) ++remote;
          if (n + 1 <= previous[o]) problems_.add(where + ": after a later message of its origin");
          previous[o] = std::max(previous[o], n + 1);
          at[p][o][n] = s;
        }
        const std::vector<std::uint64_t>& gaps = upstream[p][t];
        if (gaps.size() != predicted_[p]) {
          problems_.add(who + ": " + std::to_string(gaps.size()) + " upstream gaps in " + t + " for " +
                        std::to_string(predicted_[p]) + " outages");
        }
      }
      CHECK(stats(p).received == remote);

      // Every message: where it is, or why it is not.
      for (int o = 0; o < processes; ++o) {
        for (std::size_t n = 0; n < sent_[o].size(); ++n) {
          const sent& m = sent_[o][n];
          const std::string what = who + ": " + m.payload;
          if (!m.done) {
            problems_.add(m.payload + " never published");
            continue;
          }
          const std::vector<std::uint64_t>& gaps = upstream[p][m.topic];
          const std::uint64_t s = at[p][o][n];
          const auto gaps_before = [&](std::uint64_t seq) {
            return std::uint64_t(std::lower_bound(gaps.begin(), gaps.end(), seq) - gaps.begin());
          };
          if (o == p) {
            if (s == 0) problems_.add(what + ": published here, not delivered here");
            else if (m.window != 0 && gaps_before(s) != m.outages_at[p]) {
              problems_.add(what + ": " + std::to_string(gaps_before(s)) + " upstream gaps before it, " +
                            std::to_string(m.outages_at[p]) + " outages before it");
            }
            continue;
          }
          if (s != 0) {
            if (m.must_not_arrive) problems_.add(what + ": delivered, though older than the newest " +
                                                 std::to_string(max_outgoing) + " of an outage");
            // Published when the previous outages were over everywhere: after their gaps; and when it had to
            // arrive before the next outage, before its gap.
            if (m.window != 0 && (gaps_before(s) < m.outages_at[p] ||
                                  (m.must_arrive && gaps_before(s) != m.outages_at[p]))) {
              problems_.add(what + ": after " + std::to_string(gaps_before(s)) + " upstream gaps, published after " +
                            std::to_string(m.outages_at[p]) + " outages here");
            }
            continue;
          }
          if (m.must_arrive) {
            problems_.add(what + ": not delivered");
            continue;
          }
          // Missing: an upstream gap must lie between the origin's previous and next delivered messages of the
          // topic; otherwise its publisher must have dropped it.
          std::uint64_t before = 0, after = std::numeric_limits<std::uint64_t>::max();
          for (std::size_t k = n; k-- > 0;) {
            if (sent_[o][k].topic == m.topic && at[p][o][k] != 0) {
              before = at[p][o][k];
              break;
            }
          }
          for (std::size_t k = n + 1; k < sent_[o].size(); ++k) {
            if (sent_[o][k].topic == m.topic && at[p][o][k] != 0) {
              after = at[p][o][k];
              break;
            }
          }
          const auto g = std::upper_bound(gaps.begin(), gaps.end(), before);
          if (g == gaps.end() || *g >= after) unexplained[o].insert(n);
        }
      }

      // The other subscribers: the same numbering as the full view; the slow ones that may lose messages have
      // overflow gaps where they lost them; the upstream gaps everywhere.
      for (std::size_t li = 1; li < procs_[p].listeners.size(); ++li) {
        const listener& l = *procs_[p].listeners[li];
        const std::string name = who + " " + l.spec.name + (l.spec.slow ? " (slow)" : "");
        const bool lossy = l.spec.slow && *l.spec.slow != overflow_policy::wait;
        for (const std::string& e : l.errors) problems_.add(name + ": error " + e);
        for (const std::string& t : topics) {
          if (!glob_match(l.spec.name, t)) continue;
          const std::uint64_t last = b(p).last_sequence(t);
          const std::vector<slot> mine = by_number(l, t, last, name);
          for (std::uint64_t s = 1; s <= last; ++s) {
            const slot &x = mine[s], &y = full[t][s];
            const std::string where = name + ": " + t + "#" + std::to_string(s);
            if (x.times != 1 || y.times != 1) continue;
            if (x.is_gap && x.reason == gap_reason::overflow && lossy && !y.is_gap) continue;  // lost here
            if (x.is_gap != y.is_gap || x.reason != y.reason || x.payload != y.payload) {
              problems_.add(where + " is " + (x.is_gap ? std::string(to_string(x.reason)) + " gap" : x.payload) +
                            ", in the full view " + (y.is_gap ? std::string(to_string(y.reason)) + " gap" : y.payload));
            }
          }
        }
      }
      for (const std::string& e : full_view(p).errors) problems_.add(who + " *: error " + e);
    }

    for (int p = 0; p < processes; ++p) {
      const auto s = stats(p);
      INFO("process " << p << ": sent " << s.sent << ", dropped " << s.dropped_outgoing << ", received "
                      << s.received << ", echoes " << s.echoes << ", outages " << s.outages << ", reconnects "
                      << s.reconnects << "; published " << completed_[p] << ", missing without a gap "
                      << unexplained[p].size());
      CHECK(s.outages == predicted_[p]);
      CHECK(s.reconnects == predicted_[p]);
      CHECK(s.nodes_up == 1);
      CHECK(s.channels == procs_[p].channels);
      CHECK(s.patterns == procs_[p].patterns);
      CHECK(s.sent + s.dropped_outgoing == completed_[p]);
      CHECK(unexplained[p].size() <= s.dropped_outgoing);  // those its bridge dropped, counted
      CHECK(s.echoes <= completed_[p]);
    }
    INFO(trace());
    INFO(problems_.text());
    CHECK(problems_.count == 0);
  }

  std::string trace() const {
    std::string out = "outages:";
    for (const std::string& t : trace_) out += " [" + t + "]";
    return out;
  }

  std::mt19937 rng_;
  std::unique_ptr<switchboard::test::redis_server> redis_;
  std::uint16_t port_ = 0;
  asio::io_context control_ctx_;
  std::unique_ptr<switchboard::test::redis_client> control_;  // RESP2, connected before any password is set
  asio::io_context ctx_;  // the processes' one thread
  std::array<process, processes> procs_;

  std::array<std::vector<sent>, processes> sent_;
  std::array<std::vector<std::size_t>, processes> admitted_;  // indexes into sent_, in the order published
  std::array<std::uint64_t, processes> completed_{};
  std::size_t pending_async_ = 0;
  std::array<std::uint64_t, processes> predicted_{};  // outages caused, by process
  bool redis_down_ = false;
  int locked_ = -1;
  int window_ = 0, windows_ = 0;  // the steady period now (0: none), and how many there were
  std::vector<std::pair<int, std::size_t>> unsettled_;  // published in this period, not yet waited for
  std::array<std::size_t, processes> window_count_{};
  std::vector<std::pair<int, std::size_t>> must_arrive_;  // not yet arrived everywhere
  std::vector<std::string> trace_;
  problems problems_;
};

}  // namespace

// A model of the bridge's promises under outages (see the top of the file), over several seeds.
TEST_CASE("redis bridge: outages at random points: each message once, in order, delivered or covered by a gap",
          "[pubsub][redis_bridge]") {
  REQUIRE(switchboard::test::have_program("redis-server"));
  const std::uint32_t seed = GENERATE(range(1u, 7u));
  INFO("seed " << seed);
  outage_run run(seed);
  run.run();
}
