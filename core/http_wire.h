#pragma once
// HTTP/1.1 message heads and chunk frames formatted straight into one buffer: the hot path writes
// each message with a single gather write instead of Beast's serializer machinery (measured: that
// machinery was ~8% of the proxy's CPU). Parsing stays with Beast.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

namespace core {

const char* http_reason(int status);

inline void append_status_line(std::string& out, int status) {
  if (status < 100 || status > 999) status = 500;
  const char line[13] = {'H', 'T', 'T', 'P', '/', '1', '.', '1', ' ', static_cast<char>('0' + status / 100),
                         static_cast<char>('0' + status / 10 % 10), static_cast<char>('0' + status % 10), ' '};
  out.append(line, sizeof line);
  out += http_reason(status);
  out += "\r\n";
}

namespace detail {
// Appends s without CR and LF (and without ':' if drop_colon); runs are appended whole: this is
// on every message head.
inline void append_header_text(std::string& out, std::string_view s, bool drop_colon) {
  if (!std::memchr(s.data(), '\r', s.size()) && !std::memchr(s.data(), '\n', s.size()) &&
      !(drop_colon && std::memchr(s.data(), ':', s.size()))) {
    out.append(s);  // the usual case
    return;
  }
  const char* p = s.data();
  const char* end = p + s.size();
  const char* run = p;
  for (; p != end; ++p) {
    const char c = *p;
    if (c == '\r' || c == '\n' || (drop_colon && c == ':')) {
      out.append(run, static_cast<size_t>(p - run));
      run = p + 1;
    }
  }
  out.append(run, static_cast<size_t>(end - run));
}
}  // namespace detail

// Appends "name: value\r\n"; CR and LF are dropped so no value can inject a header.
inline void append_header(std::string& out, std::string_view name, std::string_view value) {
  detail::append_header_text(out, name, true);
  out.append(": ", 2);
  detail::append_header_text(out, value, false);
  out.append("\r\n", 2);
}

// The same for a header name written in our code (a valid token): only the value is checked.
// Message heads are written on every request, mostly with such names.
inline void append_known_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  detail::append_header_text(out, value, false);
  out.append("\r\n", 2);
}

// "Content-Length: N\r\n", without a temporary string.
inline void append_content_length(std::string& out, size_t size) {
  char buf[40] = "Content-Length: ";
  char* end = buf + sizeof buf;
  char* p = end;
  *--p = '\n';
  *--p = '\r';
  do {
    *--p = static_cast<char>('0' + size % 10);
    size /= 10;
  } while (size);
  out.append(buf, 16);
  out.append(p, static_cast<size_t>(end - p));
}

// Chunk size line for a chunk of `size` bytes.
inline void append_chunk_size(std::string& out, size_t size) {
  char buf[20];
  char* p = buf + sizeof buf;
  *--p = '\n';
  *--p = '\r';
  do {
    *--p = "0123456789abcdef"[size & 15];
    size >>= 4;
  } while (size);
  out.append(p, static_cast<size_t>(buf + sizeof buf - p));
}

}  // namespace core
