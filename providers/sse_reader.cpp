#include "providers/sse_reader.h"

#include <cstring>

namespace providers {
namespace {
// Index of the first CR or LF at or after `from`, or npos. Two memchr passes (the second bounded
// by the first hit): std::string::find_first_of calls memchr once per byte of the line.
size_t line_end(const std::string& buf, size_t from) {
  const char* b = buf.data() + from;
  const char* e = buf.data() + buf.size();
  const char* lf = static_cast<const char*>(std::memchr(b, '\n', static_cast<size_t>(e - b)));
  const char* limit = lf ? lf : e;
  const char* cr = static_cast<const char*>(std::memchr(b, '\r', static_cast<size_t>(limit - b)));
  const char* hit = cr ? cr : lf;
  return hit ? static_cast<size_t>(hit - buf.data()) : std::string::npos;
}
}  // namespace

bool SseReader::feed(std::string_view bytes) {
  if (pos_ > 0 && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
  return buf_.size() - pos_ <= max_event_bytes_;
}

void SseReader::release_idle(SseEvent& ev) {
  if (pending_bytes() > 0) return;
  std::string().swap(buf_);
  pos_ = 0;
  std::string().swap(ev.data);
  std::string().swap(ev.event);
}

bool SseReader::next(SseEvent& out) {
  // Parse line by line from pos_; an empty line dispatches. Only commit pos_ when an event ends.
  // The event is built in `out` (its strings keep their capacity from call to call).
  size_t p = pos_;
  SseEvent& ev = out;
  ev.event.clear();
  ev.data.clear();
  ev.comment_only = false;
  bool have_data = false, have_any = false;
  size_t comments = 0;  // committed only when the block is dispatched (it may be re-scanned)
  const size_t n = buf_.size();
  while (p < n) {
    if (skip_lf_ && p == pos_) {
      if (buf_[p] == '\n') { ++p; pos_ = p; }
      skip_lf_ = false;
      continue;
    }
    size_t eol = line_end(buf_, p);
    if (eol == std::string::npos) return false;  // incomplete line
    bool cr = buf_[eol] == '\r';
    size_t next_line = eol + 1;
    if (cr) {
      if (next_line < n) {
        if (buf_[next_line] == '\n') ++next_line;
      } else {
        // CR at the end of the buffer: a following LF may still come. Treat as line end,
        // remember to swallow a leading LF.
      }
    }
    std::string_view line(buf_.data() + p, eol - p);
    p = next_line;
    if (line.empty()) {
      if (!have_any) {  // blank line with nothing pending: skip it
        pos_ = p;
        if (cr && p == n) skip_lf_ = true;
        continue;
      }
      pos_ = p;
      if (cr && p == n) skip_lf_ = true;
      comments_ += comments;
      if (have_data && !ev.data.empty() && ev.data.back() == '\n') ev.data.pop_back();
      ev.comment_only = !have_data && ev.event.empty();
      return true;
    }
    have_any = true;
    if (line[0] == ':') {
      ++comments;
      continue;
    }
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      ev.data.append(value);
      ev.data.push_back('\n');
      have_data = true;
    } else if (field == "event") {
      ev.event.assign(value);
    }
    // "id" and "retry" are irrelevant to a relay; unknown fields are ignored per spec.
  }
  return false;
}

}  // namespace providers
