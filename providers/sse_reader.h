#pragma once
// Incremental Server-Sent Events parser (WHATWG rules): feed bytes as they arrive, get events
// as soon as their terminating blank line is seen. Bounded: an event larger than max_event_bytes
// is an error, not unbounded memory.
#include <cstddef>
#include <string>
#include <string_view>

namespace providers {

struct SseEvent {
  std::string event;  // "event:" field, empty = "message"
  std::string data;   // "data:" lines joined with '\n'
  bool comment_only = false;  // the block held only comments (e.g. ": keep-alive")
};

class SseReader {
 public:
  explicit SseReader(size_t max_event_bytes = 8 << 20) : max_event_bytes_(max_event_bytes) {}

  // Appends bytes. Returns false if the pending event grew over the bound.
  bool feed(std::string_view bytes);
  // Pops the next complete event into `out`; false when none is complete yet (then `out` holds
  // nothing useful). Reusing one SseEvent across calls reuses its strings' memory.
  bool next(SseEvent& out);
  // Bytes received but not yet forming a complete event.
  size_t pending_bytes() const { return buf_.size() - pos_; }
  // Count of comment lines seen (keep-alives).
  size_t comments_seen() const { return comments_; }
  // With nothing pending, gives the memory of the buffer and of the reused event `ev` back: a relay
  // calls it before waiting for the next bytes, since an open stream waits nearly all its life
  // (memory per open stream, tests/bench/stream_bench.sh); the next event allocates again.
  void release_idle(SseEvent& ev);

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t max_event_bytes_;
  size_t comments_ = 0;
  bool skip_lf_ = false;  // a block ended with CR; a following LF belongs to it
};

}  // namespace providers
