#include "providers/sse_reader.h"

#include <gtest/gtest.h>

using providers::SseEvent;
using providers::SseReader;

TEST(SseReader, SplitsEventsAcrossArbitraryFeedBoundaries) {
  const std::string wire = ": keep-alive\n\ndata: {\"a\":1}\n\ndata: line1\ndata: line2\n\nevent: x\ndata: [DONE]\n\n";
  for (size_t step = 1; step <= wire.size(); ++step) {
    SseReader r;
    std::vector<SseEvent> got;
    for (size_t i = 0; i < wire.size(); i += step) {
      ASSERT_TRUE(r.feed(std::string_view(wire).substr(i, step)));
      SseEvent ev;
      while (r.next(ev)) got.push_back(ev);
    }
    ASSERT_EQ(got.size(), 4u) << "step " << step;
    EXPECT_TRUE(got[0].comment_only);
    EXPECT_EQ(got[1].data, "{\"a\":1}");
    EXPECT_EQ(got[2].data, "line1\nline2");
    EXPECT_EQ(got[3].event, "x");
    EXPECT_EQ(got[3].data, "[DONE]");
    EXPECT_EQ(r.comments_seen(), 1u);
  }
}

TEST(SseReader, AcceptsCrLfAndBareCr) {
  SseReader r;
  ASSERT_TRUE(r.feed("data: a\r\n\r\ndata: b\r\rdata:c\n\n"));
  SseEvent ev;
  ASSERT_TRUE(r.next(ev));
  EXPECT_EQ(ev.data, "a");
  ASSERT_TRUE(r.next(ev));
  EXPECT_EQ(ev.data, "b");
  ASSERT_TRUE(r.next(ev));
  EXPECT_EQ(ev.data, "c");  // no space after the colon
  EXPECT_FALSE(r.next(ev));
}

TEST(SseReader, IncompleteEventIsNotDispatched) {
  SseReader r;
  ASSERT_TRUE(r.feed("data: {\"partial\":"));
  SseEvent ev;
  EXPECT_FALSE(r.next(ev));
  ASSERT_TRUE(r.feed("true}\n"));
  EXPECT_FALSE(r.next(ev));  // no blank line yet
  ASSERT_TRUE(r.feed("\n"));
  ASSERT_TRUE(r.next(ev));
  EXPECT_EQ(ev.data, "{\"partial\":true}");
}

TEST(SseReader, OversizedEventIsAnError) {
  SseReader r(64);
  EXPECT_TRUE(r.feed(std::string(60, 'x')));
  EXPECT_FALSE(r.feed(std::string(10, 'x')));
}

TEST(SseReader, ReleasingWhileIdleKeepsEveryEvent) {
  SseReader r;
  SseEvent ev;
  std::vector<std::string> got;
  // A block ending in CR right before the release: its LF arrives with the next bytes.
  for (std::string_view piece : {"data: a\n\n", "event: e\ndata: b\r\n\r", "\ndata: c\n", "\n", "data: d\n\ndata: e"}) {
    r.release_idle(ev);
    ASSERT_TRUE(r.feed(piece));
    while (r.next(ev)) got.push_back(ev.event + "|" + ev.data);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"|a", "e|b", "|c", "|d"}));
  r.release_idle(ev);  // "data: e" is pending: kept
  ASSERT_TRUE(r.feed("\n\n"));
  ASSERT_TRUE(r.next(ev));
  EXPECT_EQ(ev.data, "e");
  r.release_idle(ev);
  EXPECT_EQ(r.pending_bytes(), 0u);
  EXPECT_EQ(ev.data.capacity(), std::string().capacity());
}
