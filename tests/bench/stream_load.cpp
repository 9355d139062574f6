// Many concurrent SSE streams, for the DESIGN budget "10k concurrent streaming connections on one
// machine; added inter-chunk latency p99 <= 100 us; memory flat over a long soak".
//
// One process plays both ends, on one clock (CLOCK_MONOTONIC):
//   upstream: listens on UPSTREAM_PORT and answers every POST with a chunked SSE stream of EVENTS
//             chat.completion.chunk events, one every INTERVAL_MS, each carrying its send time (ns)
//             as its content ("t123..."), then a finish/usage event, "data: [DONE]" and the last chunk.
//             Each stream's first event comes after a random part of the interval, so the events of
//             all streams arrive spread out over time, each sent at its own time (to the ns).
//   clients:  STREAMS keep-alive connections to TARGET_PORT (opened at RAMP_PER_S), each with one
//             streaming request in flight at a time; when a stream ends, the next starts on the same
//             connection, so STREAMS streams stay open for the whole run.
// The latency of an event is its arrival at a client minus its send time at the upstream. Point
// TARGET_PORT at UPSTREAM_PORT (direct), then at a gateway whose provider is UPSTREAM_PORT: the
// difference is what the gateway adds. Figures count events sent after every stream was open.
//
// The two ends can also run as two processes (on one machine, so on one clock): UPSTREAM_PORT 0
// runs only the clients; TARGET_PORT 0 runs only the upstream, for SECONDS, then exits.
//
// Usage: stream_load UPSTREAM_PORT TARGET_PORT STREAMS SECONDS [INTERVAL_MS] [EVENTS] [RAMP_PER_S]
// Prints one line (not in upstream-only mode): "streams N open N completed N errors N events N p50 X p90 X p99 X p999 X max X" (µs).
// Errors (non-200 answers, in-band error events, connections closed early) are counted, and the
// connection is opened again.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "latency_summary.h"

namespace {

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void no_delay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool send_all(int fd, std::string_view data) {
  return ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
}

// epoll tags: which table, and the index in it.
enum Kind : uint64_t { kListener = 1, kTimer = 2, kUpstream = 3, kClient = 4, kSendTimer = 5 };
uint64_t tag(Kind k, size_t i) { return (static_cast<uint64_t>(k) << 32) | i; }

// ---- upstream side -------------------------------------------------------------------------------
struct UpConn {
  int fd = -1;
  std::string in;        // request bytes not yet answered
  int remaining = 0;     // events still to send in the current stream (0: none in progress)
  uint32_t gen = 0;      // bumped when the connection closes, so queued sends for it are dropped
};

struct Due {
  int64_t at;
  size_t conn;
  uint32_t gen;
  bool operator>(const Due& o) const { return at > o.at; }
};

// Length of a complete request (head + Content-Length body) at the start of `in`, else 0.
size_t complete_request(const std::string& in) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  size_t cl = 0;
  for (size_t p = in.find("\r\n"); p < head_end; p = in.find("\r\n", p + 2))
    if (in.size() > p + 17 && strncasecmp(in.data() + p + 2, "content-length:", 15) == 0)
      cl = std::strtoul(in.c_str() + p + 17, nullptr, 10);
  size_t total = head_end + 4 + cl;
  return in.size() >= total ? total : 0;
}

void append_chunk(std::string& out, std::string_view payload) {
  char size[24];
  std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
  out += size;
  out += payload;
  out += "\r\n";
}

std::string event_chunk(int64_t sent_ns) {
  char payload[320];
  std::snprintf(payload, sizeof payload,
                "data: {\"id\":\"chatcmpl-soak\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,"
                "\"model\":\"soak-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%" PRId64
                "\"},\"finish_reason\":null}]}\n\n",
                sent_ns);
  std::string out;
  append_chunk(out, payload);
  return out;
}

std::string final_chunks(int events) {
  char payload[400];
  std::snprintf(payload, sizeof payload,
                "data: {\"id\":\"chatcmpl-soak\",\"object\":\"chat.completion.chunk\",\"created\":1764000000,"
                "\"model\":\"soak-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n",
                events, events + 9);
  std::string out;
  append_chunk(out, payload);
  append_chunk(out, "data: [DONE]\n\n");
  out += "0\r\n\r\n";
  return out;
}

// ---- client side ---------------------------------------------------------------------------------
struct Client {
  int fd = -1;
  bool connected = false;
  bool done_seen = false;   // "data: [DONE]" arrived
  bool last_chunk = false;  // then the last chunk's size line "0"
  bool complete = false;    // then its closing blank line: the answer is complete
  bool status_ok = false;
  bool head_done = false;
  std::string line;        // bytes of the current, incomplete line
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s UPSTREAM_PORT TARGET_PORT STREAMS SECONDS [INTERVAL_MS] [EVENTS] [RAMP_PER_S]\n",
                 argv[0]);
    return 2;
  }
  const int up_port = std::atoi(argv[1]);
  const int target_port = std::atoi(argv[2]);
  const size_t streams = std::strtoul(argv[3], nullptr, 10);
  const double seconds = std::atof(argv[4]);
  const int64_t interval_ns = static_cast<int64_t>((argc > 5 ? std::atof(argv[5]) : 1000.0) * 1e6);
  const int events = argc > 6 ? std::atoi(argv[6]) : 20;
  const double ramp_per_s = argc > 7 ? std::atof(argv[7]) : 2000.0;
  if ((streams == 0 && target_port != 0) || seconds <= 0 || interval_ns <= 0 || events <= 0 || ramp_per_s <= 0) {
    std::fprintf(stderr, "stream_load: STREAMS, SECONDS, INTERVAL_MS, EVENTS and RAMP_PER_S must be positive\n");
    return 2;
  }

  int ep = ::epoll_create1(0);
  auto watch = [&](int fd, uint32_t events_mask, uint64_t data, int op = EPOLL_CTL_ADD) {
    epoll_event ev{};
    ev.events = events_mask;
    ev.data.u64 = data;
    return ::epoll_ctl(ep, op, fd, &ev);
  };

  const bool upstream_only = target_port == 0;
  int lfd = -1;
  if (up_port != 0) {
    lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in la = loopback(up_port);
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 || ::listen(lfd, 65535) != 0) {
      std::fprintf(stderr, "stream_load: cannot listen on 127.0.0.1:%d: %s\n", up_port, std::strerror(errno));
      return 1;
    }
    watch(lfd, EPOLLIN, tag(kListener, 0));
  }

  int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  itimerspec its{};
  its.it_value.tv_nsec = 1000000;
  its.it_interval.tv_nsec = 1000000;  // 1 ms tick: connections to open
  ::timerfd_settime(tfd, 0, &its, nullptr);
  watch(tfd, EPOLLIN, tag(kTimer, 0));
  // Upstream sends are timed to the nanosecond by a second timer, armed for the earliest one due:
  // events reach the proxy spread out as from a real upstream, not in bursts of one tick.
  int send_tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  watch(send_tfd, EPOLLIN, tag(kSendTimer, 0));
  int64_t send_armed = INT64_MAX;
  auto arm_send = [&](int64_t at) {
    if (at >= send_armed) return;
    send_armed = at;
    itimerspec st{};
    st.it_value.tv_sec = at / 1000000000;
    st.it_value.tv_nsec = at % 1000000000;
    ::timerfd_settime(send_tfd, TFD_TIMER_ABSTIME, &st, nullptr);
  };
  // Each stream's events keep a fixed phase, drawn at random when it starts, so that streams opened
  // together do not send together.
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  auto jitter = [&] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<int64_t>(rng % static_cast<uint64_t>(interval_ns));
  };

  std::vector<UpConn> ups;
  std::vector<size_t> free_ups;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due;  // earliest first
  const std::string sse_head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
  const std::string finals = final_chunks(events);

  std::vector<Client> clients(upstream_only ? 0 : streams);
  const std::string body = "{\"model\":\"soak\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}";
  const std::string request = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;

  const int64_t t0 = now_ns();
  int64_t measure_from = INT64_MAX;  // set once every stream is open
  int64_t measure_to = INT64_MAX;
  size_t opened = 0, open_now = 0;
  long completed = 0, errors = 0, connect_failures = 0;
  std::vector<size_t> reopen;  // clients to connect again (after an error)
  std::vector<double> lat_us;
  lat_us.reserve(static_cast<size_t>(static_cast<double>(streams) * seconds * 1e9 / static_cast<double>(interval_ns)) + 1024);

  auto close_up = [&](size_t i) {
    ::close(ups[i].fd);
    ups[i].fd = -1;
    ups[i].in.clear();
    ups[i].remaining = 0;
    ++ups[i].gen;
    free_ups.push_back(i);
  };
  auto open_client = [&](size_t i) {
    Client& c = clients[i];
    c = Client{};
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c.fd < 0) {
      ++connect_failures;
      reopen.push_back(i);
      return;
    }
    no_delay(c.fd);
    sockaddr_in a = loopback(target_port);
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
      ::close(c.fd);
      c.fd = -1;
      ++connect_failures;
      reopen.push_back(i);
      return;
    }
    watch(c.fd, EPOLLOUT, tag(kClient, i));  // writable = connected: then the request goes out
    ++open_now;
  };
  auto start_stream = [&](size_t i) {
    Client& c = clients[i];
    c.done_seen = c.last_chunk = c.complete = c.status_ok = c.head_done = false;
    c.line.clear();
    return send_all(c.fd, request);
  };
  auto fail_client = [&](size_t i) {
    Client& c = clients[i];
    ++errors;
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
    --open_now;
    reopen.push_back(i);
  };
  // One complete line of the answer (without its '\n'). Returns false on an error.
  auto on_line = [&](size_t i, std::string_view l, int64_t at) {
    Client& c = clients[i];
    if (!c.head_done) {
      if (l.rfind("HTTP/1.", 0) == 0) c.status_ok = l.size() > 12 && l.substr(9, 3) == "200";
      if (l == "\r") {
        c.head_done = true;
        if (!c.status_ok) return false;
      }
      return true;
    }
    if (l.rfind("data: ", 0) == 0) {
      std::string_view d = l.substr(6);
      if (d == "[DONE]") {
        c.done_seen = true;
        return true;
      }
      if (d.find("\"error\"") != std::string_view::npos) return false;
      size_t p = d.find("\"content\":\"t");
      if (p != std::string_view::npos) {
        int64_t sent = std::strtoll(d.data() + p + 12, nullptr, 10);
        if (sent >= measure_from && sent < measure_to) lat_us.push_back(static_cast<double>(at - sent) / 1e3);
      }
      return true;
    }
    // Chunk framing ("7f\r", "\r") and event separators (""): only the end matters.
    if (c.done_seen && l == "0\r") c.last_chunk = true;
    else if (c.last_chunk && l == "\r") c.complete = true;
    return true;
  };

  char buf[65536];
  epoll_event evs[512];
  const int64_t ramp_ns_per_conn = static_cast<int64_t>(1e9 / ramp_per_s);
  int64_t next_open = t0;
  bool stopping = false;
  for (;;) {
    const int64_t now = now_ns();
    if (upstream_only) {
      if (now >= t0 + static_cast<int64_t>(seconds * 1e9)) return 0;
      opened = streams;  // no clients to open
    }
    if (!upstream_only && measure_from == INT64_MAX && opened == streams && open_now == streams && reopen.empty()) {
      measure_from = now + interval_ns;  // streams begun before this point had their first event sent
      measure_to = measure_from + static_cast<int64_t>(seconds * 1e9);
    }
    if (measure_to != INT64_MAX && now >= measure_to + 2 * interval_ns) break;  // the window's events are in
    if (!upstream_only && now > t0 + static_cast<int64_t>(seconds * 1e9) + 120 * 1000000000LL) {
      std::fprintf(stderr, "stream_load: only %zu of %zu streams could be opened (%ld connect failures)\n",
                   open_now, streams, connect_failures);
      return 1;
    }
    stopping = measure_to != INT64_MAX && now >= measure_to;
    int n = ::epoll_wait(ep, evs, 512, 100);
    for (int k = 0; k < n; ++k) {
      const Kind kind = static_cast<Kind>(evs[k].data.u64 >> 32);
      const size_t i = evs[k].data.u64 & 0xffffffffu;
      if (kind == kTimer) {
        uint64_t ticks;
        if (::read(tfd, &ticks, sizeof ticks) < 0) {}
        const int64_t t = now_ns();
        // Connections to open (ramp-up), and ones to open again after an error.
        while (!stopping && opened < streams && next_open <= t) {
          open_client(opened++);
          next_open += ramp_ns_per_conn;
        }
        if (!stopping && !reopen.empty()) {
          std::vector<size_t> again;
          again.swap(reopen);
          for (size_t c : again) open_client(c);
        }
        continue;
      }
      if (kind == kSendTimer) {
        uint64_t ticks;
        if (::read(send_tfd, &ticks, sizeof ticks) < 0) {}
        send_armed = INT64_MAX;
        while (!due.empty() && due.top().at <= now_ns()) {
          Due d = due.top();
          due.pop();
          UpConn& u = ups[d.conn];
          if (u.gen != d.gen || u.fd < 0 || u.remaining <= 0) continue;
          bool ok;
          if (--u.remaining > 0) {
            ok = send_all(u.fd, event_chunk(now_ns()));
            due.push({d.at + interval_ns, d.conn, d.gen});
          } else {
            ok = send_all(u.fd, event_chunk(now_ns())) && send_all(u.fd, finals);
          }
          if (!ok) close_up(d.conn);
        }
        if (!due.empty()) arm_send(due.top().at);
        continue;
      }
      if (kind == kListener) {
        for (;;) {
          int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd < 0) break;
          no_delay(fd);
          size_t u;
          if (!free_ups.empty()) {
            u = free_ups.back();
            free_ups.pop_back();
          } else {
            u = ups.size();
            ups.emplace_back();
          }
          ups[u].fd = fd;
          watch(fd, EPOLLIN, tag(kUpstream, u));
        }
        continue;
      }
      if (kind == kUpstream) {
        UpConn& u = ups[i];
        ssize_t r = ::recv(u.fd, buf, sizeof buf, 0);
        if (r <= 0) {
          if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
          close_up(i);
          continue;
        }
        u.in.append(buf, static_cast<size_t>(r));
        size_t len = complete_request(u.in);
        if (len == 0 || u.remaining > 0) continue;  // incomplete, or a stream still running
        u.in.erase(0, len);
        if (!send_all(u.fd, sse_head)) {
          close_up(i);
          continue;
        }
        u.remaining = events;
        due.push({now_ns() + interval_ns / 2 + jitter(), i, u.gen});
        arm_send(due.top().at);
        continue;
      }
      // Client.
      Client& c = clients[i];
      if (c.fd < 0) continue;
      if (!c.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || !(evs[k].events & EPOLLOUT)) {
          fail_client(i);
          continue;
        }
        c.connected = true;
        watch(c.fd, EPOLLIN, tag(kClient, i), EPOLL_CTL_MOD);
        if (!start_stream(i)) fail_client(i);
        continue;
      }
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        fail_client(i);
        continue;
      }
      const int64_t at = now_ns();
      bool ok = true;
      size_t start = 0;
      for (size_t p = 0; p < static_cast<size_t>(r) && ok; ++p) {
        if (buf[p] != '\n') continue;
        if (c.line.empty()) {
          ok = on_line(i, std::string_view(buf + start, p - start), at);
        } else {
          c.line.append(buf + start, p - start);
          ok = on_line(i, c.line, at);
          c.line.clear();
        }
        start = p + 1;
      }
      if (!ok) {
        fail_client(i);
        continue;
      }
      c.line.append(buf + start, static_cast<size_t>(r) - start);
      if (c.complete) {
        ++completed;
        if (!stopping && !start_stream(i)) fail_client(i);
      }
    }
  }

  const size_t measured = lat_us.size();
  std::printf("streams %zu open %zu completed %ld errors %ld events %zu %s\n", streams, open_now, completed,
              errors + connect_failures, measured, bench::latency_summary(std::move(lat_us)).c_str());
  return 0;
}
