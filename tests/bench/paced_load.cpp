// Open-loop HTTP/1.1 load at a set rate, for the latency budget "at 5k requests/s" (DESIGN.md).
//
// wrk paces only with its delay() hook, in whole milliseconds on one event-loop clock: its
// connections wake on the same tick and send together, so every request of a burst queues behind
// the others and the measured latency is the burst's, not the hop's. This tool spaces sends evenly
// (one every 1/rate seconds, timed by a timerfd with nanosecond resolution) over a pool of
// keep-alive connections, and times each request from its send to the last byte of its answer.
//
// Usage: paced_load HOST PORT PATH BODY_FILE RATE SECONDS [CONNECTIONS]
// Prints one line: "sent N ok N errors N late N behind N rate R p50 X p90 X p99 X p999 X max X" (µs).
// "late" counts sends that found every connection busy (the target could not keep up): they are
// skipped, not queued, so a slow target shows up there instead of inflating the percentiles.
// "behind" counts sends that left more than one interval (1/RATE) after their due time: this
// thread itself fell behind (descheduled on a busy machine), so sends went out in bursts and the
// round does not measure the evenly paced load it claims; proxy_bench.sh excludes such rounds.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "latency_summary.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  bool busy = false;
  Clock::time_point sent_at;
  std::string in;  // bytes of the answer so far
};

int connect_to(const char* host, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host, &a.sin_addr) != 1) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Length of the complete answer at the start of `in` (head + Content-Length body), 0 if incomplete,
// -1 if it is not a Content-Length answer (this tool does not follow chunked bodies).
long complete_answer(const std::string& in) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  size_t cl = std::string::npos;
  for (size_t p = in.find("\r\n"); p < head_end; p = in.find("\r\n", p + 2)) {
    if (in.size() > p + 17 && strncasecmp(in.data() + p + 2, "content-length:", 15) == 0) {
      cl = std::strtoul(in.c_str() + p + 17, nullptr, 10);
      break;
    }
  }
  if (cl == std::string::npos) return -1;
  size_t total = head_end + 4 + cl;
  return in.size() >= total ? static_cast<long>(total) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s HOST PORT PATH BODY_FILE RATE SECONDS [CONNECTIONS]\n", argv[0]);
    return 2;
  }
  const char* host = argv[1];
  const int port = std::atoi(argv[2]);
  const std::string path = argv[3];
  std::ifstream bf(argv[4], std::ios::binary);
  if (!bf) {
    std::fprintf(stderr, "paced_load: cannot read %s\n", argv[4]);
    return 2;
  }
  std::stringstream bs;
  bs << bf.rdbuf();
  const std::string body = bs.str();
  const double rate = std::atof(argv[5]);
  const double seconds = std::atof(argv[6]);
  const int nconn = argc > 7 ? std::atoi(argv[7]) : 32;
  if (rate <= 0 || seconds <= 0 || nconn <= 0) {
    std::fprintf(stderr, "paced_load: RATE, SECONDS and CONNECTIONS must be positive\n");
    return 2;
  }
  const std::string request = "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\n" +
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;

  int ep = ::epoll_create1(0);
  std::vector<Conn> conns(static_cast<size_t>(nconn));
  for (size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = connect_to(host, port);
    if (conns[i].fd < 0) {
      std::fprintf(stderr, "paced_load: cannot connect to %s:%d\n", host, port);
      return 1;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
  }
  int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u64 = UINT64_MAX;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

  const auto interval = std::chrono::nanoseconds(static_cast<long long>(1e9 / rate));
  const auto start = Clock::now() + std::chrono::milliseconds(200);  // connections established
  const auto end = start + std::chrono::nanoseconds(static_cast<long long>(seconds * 1e9));
  auto next = start;
  auto arm = [&](Clock::time_point t) {
    itimerspec its{};
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
    its.it_value.tv_sec = ns / 1000000000;
    its.it_value.tv_nsec = ns % 1000000000;
    ::timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);  // steady_clock is CLOCK_MONOTONIC here
  };
  arm(next);

  std::vector<double> lat_us;
  lat_us.reserve(static_cast<size_t>(rate * seconds) + 16);
  long sent = 0, errors = 0, late = 0, behind = 0;
  size_t rr = 0;
  char buf[65536];
  epoll_event evs[256];
  while (true) {
    const auto now = Clock::now();
    const bool sending = now < end;
    bool any_busy = false;
    for (const auto& c : conns) any_busy |= c.busy;
    if (!sending && !any_busy) break;
    if (!sending && now > end + std::chrono::seconds(5)) break;  // answers that never came: errors
    int n = ::epoll_wait(ep, evs, 256, 100);
    for (int k = 0; k < n; ++k) {
      if (evs[k].data.u64 == UINT64_MAX) {
        uint64_t ticks;
        if (::read(tfd, &ticks, sizeof ticks) < 0) {}
        // Every send that is due now (normally one; more if this thread fell behind).
        for (auto t = Clock::now(); next <= t && next < end; next += interval) {
          if (t - next > interval) ++behind;
          size_t i = 0;
          for (; i < conns.size(); ++i) {
            Conn& c = conns[(rr + i) % conns.size()];
            if (c.busy) continue;
            c.busy = true;
            c.in.clear();
            c.sent_at = Clock::now();
            if (::send(c.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
              ++errors;
              c.busy = false;
            }
            ++sent;
            rr = (rr + i + 1) % conns.size();
            break;
          }
          if (i == conns.size()) ++late;
        }
        if (next < end) arm(next);
        continue;
      }
      Conn& c = conns[evs[k].data.u64];
      ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        std::fprintf(stderr, "paced_load: connection closed by the target\n");
        return 1;
      }
      const auto got_at = Clock::now();
      c.in.append(buf, static_cast<size_t>(r));
      long len = complete_answer(c.in);
      if (len < 0) {
        std::fprintf(stderr, "paced_load: answer without Content-Length\n");
        return 1;
      }
      if (len == 0) continue;
      if (c.in.compare(0, 12, "HTTP/1.1 200") != 0) ++errors;
      else lat_us.push_back(std::chrono::duration<double, std::micro>(got_at - c.sent_at).count());
      c.in.erase(0, static_cast<size_t>(len));
      c.busy = false;
    }
  }
  long stuck = 0;
  for (const auto& c : conns) stuck += c.busy;
  errors += stuck;
  const double achieved = static_cast<double>(lat_us.size()) / seconds;
  std::printf("sent %ld ok %zu errors %ld late %ld behind %ld rate %.0f %s\n", sent, lat_us.size(), errors, late,
              behind, achieved,
              bench::latency_summary(lat_us).c_str());
  return 0;
}
