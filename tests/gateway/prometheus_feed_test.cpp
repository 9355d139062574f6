#include "gateway/observe/prometheus_feed.h"

#include <gtest/gtest.h>

TEST(PrometheusFeed, ParsesInstantVectorAndDropsNonFinite) {
  auto r = gateway::parse_prometheus_vector(R"({"status":"success","data":{"resultType":"vector","result":[
    {"metric":{"deployment":"a@x/m"},"value":[1700000000.1,"0.25"]},
    {"metric":{"deployment":"b@x/m"},"value":[1700000000.1,"NaN"]},
    {"metric":{"deployment":"c@x/m"},"value":[1700000000.1,"+Inf"]},
    {"metric":{},"value":[1700000000.1,"3"]}]}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  EXPECT_DOUBLE_EQ(r->at("a@x/m"), 0.25);
}

TEST(PrometheusFeed, ErrorsAreReported) {
  EXPECT_FALSE(gateway::parse_prometheus_vector("garbage").ok());
  EXPECT_FALSE(gateway::parse_prometheus_vector(R"({"status":"error","error":"bad query"})").ok());
  EXPECT_FALSE(gateway::parse_prometheus_vector(R"({"status":"success","data":{}})").ok());
}

TEST(PrometheusFeed, QueriesAreAttemptWeighted) {
  bool found = false;
  for (const auto& q : gateway::fleet_queries())
    if (std::string(q.field) == "ttft_ms") {
      found = true;
      EXPECT_NE(q.promql.find("routing_attempts_total"), std::string::npos);
      EXPECT_DOUBLE_EQ(q.scale, 1000.0);
    }
  EXPECT_TRUE(found);
}
