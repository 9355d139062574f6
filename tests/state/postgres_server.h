#pragma once
// A throw-away PostgreSQL cluster for the ledger tests: initdb into a temp dir, 127.0.0.1 on a
// free port, unix socket in the temp dir, trust authentication, fsync off. initdb and postgres
// refuse to run as root, so as root the cluster belongs to `nobody` (runuser). pg_ctl -w -t bounds
// every start and stop. available() is false (the tests skip, saying why) without GW_PG_BIN_DIR.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace gateway::testing {

class PostgresServer {
 public:
#ifdef GW_PG_BIN_DIR
  static constexpr const char* kBinDir = GW_PG_BIN_DIR;
#else
  static constexpr const char* kBinDir = nullptr;
#endif
  static bool available() { return kBinDir && ::access((std::string(kBinDir) + "/initdb").c_str(), X_OK) == 0; }

  PostgresServer() : port_(free_port()) {
    char tmpl[] = "/tmp/gw-pg-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~PostgresServer() {
    stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // initdb (once) and start; false if either failed (the log is in dir()/server.log).
  bool start() {
    if (dir_.empty()) return false;
    if (!initialised_) {
      if (::geteuid() == 0 && std::system(("chmod 755 " + dir_ + " && chown nobody:nogroup " + dir_).c_str()) != 0)
        return false;
      if (!sh("initdb -D " + dir_ + "/data -A trust -U postgres -E UTF8 --locale=C --no-sync >" + dir_ + "/initdb.log 2>&1"))
        return false;
      initialised_ = true;
    }
    running_ = sh("pg_ctl -D " + dir_ + "/data -l " + dir_ + "/server.log -w -t 30 -o '-p " + std::to_string(port_) +
                  " -k " + dir_ + " -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null 2>&1");
    return running_;
  }
  void stop() {
    if (running_) sh("pg_ctl -D " + dir_ + "/data -m fast -w -t 20 stop >/dev/null 2>&1");
    running_ = false;
  }

  std::string url(const std::string& db = "postgres") const {
    return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }
  const std::string& dir() const { return dir_; }

 private:
  // A server binary, as the cluster's owner.
  bool sh(const std::string& cmd) const {
    const std::string run = (::geteuid() == 0 ? "runuser -u nobody -- " : "") + std::string(kBinDir) + "/" + cmd;
    return std::system(run.c_str()) == 0;
  }
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

  int port_;
  std::string dir_;
  bool initialised_ = false, running_ = false;
};

}  // namespace gateway::testing
