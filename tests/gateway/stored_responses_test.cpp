// The stored-response endpoints: input_items paging and the answers for unknown, foreign and
// refused requests, against a real (in-memory) store.
#include "gateway/api/stored_responses.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace gateway {
namespace {

const char* kItems =
    R"([{"id":"msg_1","type":"message","role":"user","content":[]},)"
    R"({"id":"msg_2","type":"message","role":"user","content":[]},)"
    R"({"id":"fc_3","type":"function_call_output","call_id":"c","output":"x"}])";

TEST(InputItemsPage, DefaultOrderIsNewestFirst) {
  auto p = input_items_page(kItems, "");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*p,
            R"({"object":"list","data":[{"id":"fc_3","type":"function_call_output","call_id":"c","output":"x"},)"
            R"({"id":"msg_2","type":"message","role":"user","content":[]},)"
            R"({"id":"msg_1","type":"message","role":"user","content":[]}],)"
            R"("first_id":"fc_3","last_id":"msg_1","has_more":false})");
}

TEST(InputItemsPage, CursorPagingInOrder) {
  auto p1 = input_items_page(kItems, "order=asc&limit=2");
  ASSERT_TRUE(p1.ok());
  EXPECT_NE(p1->find(R"("first_id":"msg_1","last_id":"msg_2","has_more":true)"), std::string::npos) << *p1;
  auto p2 = input_items_page(kItems, "order=asc&limit=2&after=msg_2");
  ASSERT_TRUE(p2.ok());
  EXPECT_NE(p2->find(R"("first_id":"fc_3","last_id":"fc_3","has_more":false)"), std::string::npos) << *p2;
  auto unknown = input_items_page(kItems, "after=nope");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(*unknown, R"({"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false})");
}

TEST(InputItemsPage, BadParametersNamed) {
  for (const char* q : {"limit=0", "limit=101", "limit=x", "limit=", "order=up"}) {
    auto p = input_items_page(kItems, q);
    ASSERT_FALSE(p.ok()) << q;
    EXPECT_EQ(p.error().kind, core::ErrorKind::bad_request) << q;
    EXPECT_FALSE(p.error().param.empty()) << q;
  }
}

StoredResponseReply call(ResponseStore* store, std::string tenant, std::string method, std::string path,
                         std::string query = "") {
  boost::asio::io_context io;
  auto f = boost::asio::co_spawn(io, serve_stored_response(store, nullptr, tenant, method, path, query),
                                 boost::asio::use_future);
  io.run();
  return f.get();
}

TEST(ServeStoredResponse, TenantsAndMethods) {
  auto s = open_sqlite_response_store(":memory:", {});
  ASSERT_TRUE(s.ok());
  StoredResponse r;
  r.id = "resp_abc";
  r.tenant = "acme";
  r.response_json = R"({"id":"resp_abc","object":"response"})";
  r.input_items_json = kItems;
  r.output_items_json = "[]";
  r.created_at = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_TRUE((*s)->put(r).ok());
  ResponseStore* store = s->get();

  EXPECT_EQ(call(store, "acme", "GET", "/v1/responses/resp_abc").body, r.response_json);
  EXPECT_EQ(call(store, "acme", "GET", "/v1/responses/resp_abc/input_items", "limit=1").status, 200);
  // Another tenant: the same 404 as an id never stored.
  auto foreign = call(store, "beta", "GET", "/v1/responses/resp_abc");
  auto never = call(store, "beta", "GET", "/v1/responses/resp_zzz");
  EXPECT_EQ(foreign.status, 404);
  EXPECT_EQ(never.status, 404);
  EXPECT_EQ(call(store, "beta", "DELETE", "/v1/responses/resp_abc").status, 404);
  EXPECT_EQ(call(store, "beta", "GET", "/v1/responses/resp_abc/input_items").status, 404);
  // Odd ids and paths.
  EXPECT_EQ(call(store, "acme", "GET", "/v1/responses/../etc").status, 404);
  EXPECT_EQ(call(store, "acme", "GET", "/v1/responses/resp_abc/other").status, 404);
  EXPECT_EQ(call(store, "acme", "POST", "/v1/responses/resp_abc").status, 400);
  EXPECT_EQ(call(store, "acme", "POST", "/v1/responses/resp_abc/cancel").status, 400);
  // Delete, then it is gone.
  auto del = call(store, "acme", "DELETE", "/v1/responses/resp_abc");
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(del.body, R"({"id":"resp_abc","object":"response.deleted","deleted":true})");
  EXPECT_EQ(call(store, "acme", "GET", "/v1/responses/resp_abc").status, 404);
  // No store at all: 404 that says why.
  auto off = call(nullptr, "acme", "GET", "/v1/responses/resp_abc");
  EXPECT_EQ(off.status, 404);
  EXPECT_NE(off.body.find("state.responses.store off"), std::string::npos);
}

}  // namespace
}  // namespace gateway
