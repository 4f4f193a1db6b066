// Random operation scripts against the broker, checked by the model of tests/fuzz/pubsub_broker_model.hpp (also
// a libFuzzer target): every sequence number accounted for once, in order, by a message or a gap event.
#include "fuzz/pubsub_broker_model.hpp"

#include "support/catch.hpp"

#include <random>
#include <string>

TEST_CASE("broker model: random scripts keep every stream whole", "[pubsub][broker][model]") {
  switchboard::pubsub::fuzz::broker_model::coverage_counts total;
  for (std::uint32_t seed = 1; seed <= 2000; ++seed) {
    std::mt19937 random(seed);
    std::string script(2 * (1 + random() % 200), '\0');
    for (char& c : script) c = static_cast<char>(random());
    switchboard::pubsub::fuzz::broker_model model;
    const std::string failure = model.run(script);
    INFO("seed " << seed);
    REQUIRE(failure == "");  // shows the violation
    const auto& c = model.coverage();
    total.messages += c.messages;
    total.overflow_gaps += c.overflow_gaps;
    total.retention_gaps += c.retention_gaps;
    total.would_block += c.would_block;
    total.disconnects += c.disconnects;
    total.async_published += c.async_published;
    total.read_messages += c.read_messages;
    total.read_gaps += c.read_gaps;
    total.reads_woken += c.reads_woken;
    total.reads_cancelled += c.reads_cancelled;
    total.topics_reclaimed += c.topics_reclaimed;
    total.budget_evictions += c.budget_evictions;
    total.topics_retired += c.topics_retired;
    total.retirements_deferred += c.retirements_deferred;
    total.renumbered += c.renumbered;
    total.superseded += c.superseded;
  }
  // The scripts reached every case the model checks.
  INFO("read messages " << total.read_messages << ", gaps " << total.read_gaps << ", woken " << total.reads_woken
                        << ", cancelled " << total.reads_cancelled << "; retired " << total.topics_retired
                        << ", deferred " << total.retirements_deferred << ", renumbered " << total.renumbered
                        << "; superseded " << total.superseded);
  CHECK(total.messages > 10'000);
  CHECK(total.overflow_gaps > 100);
  CHECK(total.retention_gaps > 100);
  CHECK(total.would_block > 100);
  CHECK(total.disconnects > 100);
  CHECK(total.async_published > 100);
  CHECK(total.read_messages > 10'000);
  CHECK(total.read_gaps > 100);
  CHECK(total.reads_woken > 100);
  CHECK(total.reads_cancelled > 100);
  CHECK(total.topics_reclaimed > 100);
  CHECK(total.budget_evictions > 100);
  CHECK(total.topics_retired > 100);
  CHECK(total.retirements_deferred > 100);
  CHECK(total.renumbered > 100);
  CHECK(total.superseded > 100);
}
