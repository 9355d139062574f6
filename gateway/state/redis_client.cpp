#include "gateway/state/redis_client.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <sys/time.h>

#include <cerrno>
#include <cstdio>

namespace gateway {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::string;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::status;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::error;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::integer;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::array;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::nil;
  }
  return out;
}

}  // namespace

RedisScript::RedisScript(std::string src) : source(std::move(src)) {
  unsigned char h[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source.data()), source.size(), h);
  static const char* digits = "0123456789abcdef";
  for (unsigned char b : h) {
    sha1.push_back(digits[b >> 4]);
    sha1.push_back(digits[b & 15]);
  }
}

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {
  if (options_.pool_size == 0) options_.pool_size = 1;
  slots_.resize(options_.pool_size);
}

RedisClient::~RedisClient() {
  for (auto& s : slots_)
    if (s.ctx) redisFree(s.ctx);
}

core::Error RedisClient::transport_error(const std::string& what) {
  auto e = core::make_error(core::ErrorKind::unavailable, "redis at " + endpoint() + ": " + what,
                            core::ErrorSource::gateway, "redis_unavailable");
  e.retry_after = std::chrono::milliseconds(1000);
  return e;
}

void RedisClient::mark_failure(const std::string& what) {
  failures_.fetch_add(1, std::memory_order_relaxed);
  if (healthy_.exchange(false))
    std::fprintf(stderr, "gateway: redis %s unreachable: %s (reconnecting with backoff)\n", endpoint().c_str(),
                 what.c_str());
}

void RedisClient::mark_success() {
  if (!healthy_.exchange(true)) std::fprintf(stderr, "gateway: redis %s reachable again\n", endpoint().c_str());
}

core::Result<size_t> RedisClient::acquire() {
  std::unique_lock lk(mu_);
  size_t slot = slots_.size();
  auto find_free = [&] {
    // Prefer a connected slot; an unconnected one otherwise.
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].busy && slots_[i].ctx) return slot = i, true;
    for (size_t i = 0; i < slots_.size(); ++i)
      if (!slots_[i].busy) return slot = i, true;
    return false;
  };
  if (!free_cv_.wait_for(lk, options_.pool_wait, find_free))
    return transport_error("all " + std::to_string(slots_.size()) + " connections busy for " +
                           std::to_string(options_.pool_wait.count()) + " ms");
  slots_[slot].busy = true;
  if (slots_[slot].ctx) return slot;

  auto now = std::chrono::steady_clock::now();
  if (now < next_connect_) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_connect_ - now).count();
    std::string err = last_error_;
    slots_[slot].busy = false;
    lk.unlock();
    free_cv_.notify_one();
    return transport_error("unreachable (" + err + "); next attempt in " + std::to_string(wait) + " ms");
  }
  lk.unlock();

  // Connect outside the lock: other callers keep using connected slots meanwhile.
  std::string err;
  redisContext* ctx = redisConnectWithTimeout(options_.host.c_str(), options_.port, to_timeval(options_.connect_timeout));
  if (!ctx) {
    err = "out of memory allocating a connection";
  } else if (ctx->err) {
    err = std::string("connect: ") + ctx->errstr;
  } else {
    redisSetTimeout(ctx, to_timeval(options_.command_timeout));
    redisEnableKeepAlive(ctx);
    auto setup = [&](std::vector<std::string> args) {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (auto& a : args) argv.push_back(a.c_str()), lens.push_back(a.size());
      auto* r = static_cast<redisReply*>(redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
      if (!r) return err = std::string("setup: ") + ctx->errstr, false;
      bool ok = r->type != REDIS_REPLY_ERROR;
      if (!ok) err = std::string(args[0]) + ": " + std::string(r->str, r->len);
      freeReplyObject(r);
      return ok;
    };
    if (!options_.password.empty()) setup({"AUTH", options_.password});
    if (err.empty() && options_.db != 0) setup({"SELECT", std::to_string(options_.db)});
  }
  lk.lock();
  if (!err.empty()) {
    if (ctx) redisFree(ctx);
    backoff_ = backoff_.count() == 0 ? options_.backoff_min : std::min(backoff_ * 2, options_.backoff_max);
    next_connect_ = std::chrono::steady_clock::now() + backoff_;
    last_error_ = err;
    slots_[slot].busy = false;
    lk.unlock();
    free_cv_.notify_one();
    mark_failure(err);
    return transport_error(err);
  }
  backoff_ = std::chrono::milliseconds(0);
  next_connect_ = {};
  slots_[slot].ctx = ctx;
  return slot;
}

void RedisClient::give_back(size_t slot, bool broken) {
  redisContext* dead = nullptr;
  {
    std::lock_guard lk(mu_);
    if (broken) {
      dead = slots_[slot].ctx;
      slots_[slot].ctx = nullptr;
    }
    slots_[slot].busy = false;
  }
  free_cv_.notify_one();
  if (dead) redisFree(dead);
}

core::Result<RedisReply> RedisClient::run(size_t slot, const std::vector<std::string>& args) {
  redisContext* ctx = slots_[slot].ctx;  // the slot is ours while busy
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) {
    // Timed out or connection lost: the connection's state is unknown, drop it.
    std::string err = ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)
                          ? "no reply within " + std::to_string(options_.command_timeout.count()) + " ms"
                          : std::string(ctx->errstr);
    give_back(slot, true);
    {
      std::lock_guard lk(mu_);
      last_error_ = err;
    }
    mark_failure(err);
    return transport_error(err);
  }
  RedisReply out = convert(r);
  freeReplyObject(r);
  give_back(slot, false);
  mark_success();
  return out;
}

core::Result<RedisReply> RedisClient::command(const std::vector<std::string>& args) {
  auto slot = acquire();
  if (!slot.ok()) return std::move(slot).error();
  return run(*slot, args);
}

core::Result<RedisReply> RedisClient::eval(const RedisScript& script, const std::vector<std::string>& keys,
                                           const std::vector<std::string>& args) {
  std::vector<std::string> cmd;
  cmd.reserve(3 + keys.size() + args.size());
  cmd.push_back("EVALSHA");
  cmd.push_back(script.sha1);
  cmd.push_back(std::to_string(keys.size()));
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  cmd.insert(cmd.end(), args.begin(), args.end());
  auto r = command(cmd);
  if (!r.ok() || !r->is_error() || r->str.rfind("NOSCRIPT", 0) != 0) return r;
  cmd[0] = "EVAL";
  cmd[1] = script.source;
  return command(cmd);
}

}  // namespace gateway
