// The worker's deadline table: the sweep calls exactly the connections whose deadline passed or
// that asked for a call, never a removed one, and slots are reused.
#include <gtest/gtest.h>

#include <vector>

#include "gateway/http/sweep_table.h"

namespace {

using gateway::SweepTable;
using Clock = std::chrono::steady_clock;

struct Conn {
  int id;
};

std::vector<int> swept(SweepTable<Conn>& t, Clock::time_point now) {
  std::vector<int> ids;
  t.sweep(now, [&](Conn* c) { ids.push_back(c->id); });
  return ids;
}

TEST(SweepTable, CallsOnlyPassedDeadlinesAndFlaggedSlots) {
  SweepTable<Conn> t;
  Conn a{1}, b{2}, c{3}, d{4};
  const auto now = Clock::now();
  const uint32_t sa = t.add(&a), sb = t.add(&b), sc = t.add(&c), sd = t.add(&d);
  t.set_deadline(sa, now - std::chrono::seconds(1));   // passed
  t.set_deadline(sb, now);                             // due exactly now
  t.set_deadline(sc, now + std::chrono::seconds(1));   // not yet
  t.set_wants_call(sd, true);                          // no deadline, a probe to follow up
  EXPECT_EQ(swept(t, now), (std::vector<int>{1, 2, 4}));
  t.set_deadline(sa, SweepTable<Conn>::kNone);
  t.set_wants_call(sd, false);
  EXPECT_EQ(swept(t, now), (std::vector<int>{2}));
  EXPECT_EQ(swept(t, now + std::chrono::seconds(2)), (std::vector<int>{2, 3}));
  (void)sc;
}

TEST(SweepTable, ARemovedSlotIsNeverCalledAndIsReused) {
  SweepTable<Conn> t;
  Conn a{1}, b{2}, c{3};
  const auto now = Clock::now();
  const uint32_t sa = t.add(&a);
  const uint32_t sb = t.add(&b);
  t.set_deadline(sa, now);
  t.set_wants_call(sb, true);
  t.remove(sa);
  t.remove(sb);
  EXPECT_TRUE(swept(t, now).empty()) << "a closed connection's deadline or flag outlived it";
  const uint32_t sc = t.add(&c);
  EXPECT_TRUE(sc == sa || sc == sb) << "the slot was not reused";
  EXPECT_EQ(t.slots(), 2u);
  EXPECT_TRUE(swept(t, now).empty()) << "a reused slot starts without a deadline";
  t.set_deadline(sc, now);
  EXPECT_EQ(swept(t, now), (std::vector<int>{3}));
}

}  // namespace
