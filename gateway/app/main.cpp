// gateway: an OpenAI-compatible, cost-optimising router for Qwen, DeepSeek, Kimi, GLM and a local model.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <algorithm>
#include <sys/resource.h>
#include <unistd.h>
#include <string>
#include <vector>

#include <fstream>
#include <sstream>

#include "gateway/app/app.h"
#include "gateway/admin/suspension_api.h"
#include "routing/what_if.h"
#include "gateway/state/auth.h"
#include "providers/error_map.h"
#include "gateway/pipeline/features.h"
#include "gateway/api/openai_chat.h"
#include "routing/catalog.h"
#include "routing/catalog_report.h"
#include "routing/pricing.h"
#include "routing/policy.h"
#include "gateway/app/config.h"
#include "gateway/state/ledger.h"
#include "gateway/state/tenants.h"
#include "gateway/http/server.h"

namespace {

const char* kUsage =
    "usage:\n"
    "  gateway serve [--config FILE] [--listen HOST:PORT]   run the gateway\n"
    "  gateway check FILE                                  validate a gateway config or a routing policy file\n"
    "  gateway explain --config FILE --request REQ.json|REQS.jsonl [--what-if suspend=SELECTOR]...\n"
    "                                                      show every candidate's score terms and exclusions;\n"
    "                                                      --what-if: plans and cost before/after suspending\n"
    "  gateway keys new --tenant NAME [--id KEY_ID]         mint a client key; prints the key and the config line\n"
    "  gateway spend --config FILE [--by tenant|deployment|day] [--from-ms N] [--to-ms N]\n"
    "                [--savings] [--format json|table]     spend report from the ledger (--savings:\n"
    "                                                      with baseline cost and saving)\n"
    "  gateway catalog [--config FILE] [--format table|json|yaml]\n"
    "                                                      every deployment's facts, the config's policy overrides applied\n"
    "  gateway version\n";

bool looks_like_policy(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("routes:", 0) == 0) return true;
  return false;
}

// Policies are checked against every built-in provider and a local engine, credentials assumed:
// `check` is about the file, not about which keys this shell happens to have.
int cmd_check_policy(const std::string& path) {
  std::vector<routing::ProviderInstance> providers;
  for (const char* t : {"deepseek", "qwen", "kimi", "glm", "minimax"}) providers.push_back({.name = t, .type = t});
  providers.push_back({.name = "local", .type = "local", .regions = {"self"}, .models = {"local"}});
  auto p = routing::compile_policy_file(path, *routing::builtin_catalog(), providers);
  if (!p) {
    std::fprintf(stderr, "%s\n", p.error().message.c_str());
    return 1;
  }
  for (const auto& w : p.value()->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  if (auto w = routing::holiday_coverage_warning(p.value()->deployments, std::time(nullptr) / 86400); !w.empty())
    std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::printf("%s: OK (policy '%s')\n", path.c_str(), p.value()->name.c_str());
  return 0;
}

// Without a config: the built-in catalog. With one: the deployments its policy compiles to (the
// policy's `catalog:` overrides and additions applied); a config without a policy routes on the
// built-in facts.
int cmd_catalog(const std::string& config_path, routing::CatalogFormat format) {
  if (config_path.empty()) {
    static gateway::App none;  // no providers configured: the built-in dialects answer
    std::fputs(routing::render_catalog(routing::builtin_catalog()->deployments(), format, gateway::catalog_surfaces(none)).c_str(), stdout);
    return 0;
  }
  auto cfg = gateway::load_config_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  static gateway::App app;
  app.config = std::move(cfg).value();
  if (auto s = gateway::build_app(app); !s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return 1;
  }
  const auto& deployments = app.policy_router ? app.policy_router->policy()->deployments
                                              : routing::builtin_catalog()->deployments();
  std::fputs(routing::render_catalog(deployments, format, gateway::catalog_surfaces(app)).c_str(), stdout);
  return 0;
}

// The chat bodies of `path`: one JSON body, or with a .jsonl name one body per non-blank line.
bool read_explain_requests(const std::string& path, std::vector<core::ChatRequest>& out) {
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<std::string> bodies;
  const bool jsonl = path.size() > 6 && path.compare(path.size() - 6, 6, ".jsonl") == 0;
  if (jsonl) {
    for (std::string line; std::getline(f, line);)
      if (line.find_first_not_of(" \t\r") != std::string::npos) bodies.push_back(line);
  } else {
    std::stringstream ss;
    ss << f.rdbuf();
    bodies.push_back(ss.str());
  }
  for (size_t i = 0; i < bodies.size(); ++i) {
    auto req = gateway::parse_chat_request(std::move(bodies[i]));
    if (!req) {
      const std::string where = jsonl ? path + ":" + std::to_string(i + 1) : path;
      std::fprintf(stderr, "%s: %s\n", where.c_str(), req.error().message.c_str());
      return false;
    }
    out.push_back(std::move(req).value());
  }
  if (out.empty()) std::fprintf(stderr, "%s: no requests\n", path.c_str());
  return !out.empty();
}

// The runtime suspensions recorded in the ledger database apply to explain as they do to serving.
// An SQLite file that does not exist yet is not created for it.
bool apply_recorded_suspensions(gateway::App& app) {
  const auto& st = app.config.state;
  core::Result<std::unique_ptr<gateway::SuspensionAudit>> audit = std::unique_ptr<gateway::SuspensionAudit>();
  if (st.ledger_backend == "postgres" && !st.ledger_url.empty()) audit = gateway::open_postgres_suspension_audit(st.ledger_url);
  else if (st.ledger_backend == "sqlite" && !st.ledger_path.empty() && std::ifstream(st.ledger_path))
    audit = gateway::open_sqlite_suspension_audit(st.ledger_path);
  if (!audit) {
    std::fprintf(stderr, "%s\n", audit.error().message.c_str());
    return false;
  }
  if (!*audit) return true;
  auto rows = (*audit)->rows();
  if (!rows) {
    std::fprintf(stderr, "%s\n", rows.error().message.c_str());
    return false;
  }
  app.policy_router->set_suspensions(std::make_shared<routing::SuspensionList>(gateway::replay_suspensions(*rows)));
  return true;
}

int cmd_explain(const std::string& config_path, const std::string& request_path, const std::vector<std::string>& what_if) {
  auto cfg = gateway::load_config_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  static gateway::App app;
  app.config = std::move(cfg).value();
  if (auto s = gateway::build_app(app); !s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return 1;
  }
  if (!app.policy_router) {
    std::fprintf(stderr, "%s: explain needs `policy:` in the config\n", config_path.c_str());
    return 1;
  }
  std::vector<core::ChatRequest> requests;
  if (!read_explain_requests(request_path, requests) || !apply_recorded_suspensions(app)) return 1;
  std::vector<routing::RequestFeatures> features;
  for (const auto& r : requests) features.push_back(gateway::features_of(r, {}, true));
  if (!what_if.empty()) {
    auto list = gateway::what_if_from_specs(app, what_if);
    if (!list) {
      std::fprintf(stderr, "--what-if: %s\n", list.error().message.c_str());
      return 2;
    }
    std::printf("%s\n", routing::what_if_json(*app.policy_router, features, *list).c_str());
  } else if (features.size() == 1) {
    std::printf("%s\n", gateway::explain_with_surfaces(app, app.policy_router->explain_json(features[0])).c_str());
  } else {
    std::string out = "[";
    for (size_t i = 0; i < features.size(); ++i)
      out += (i ? "," : "") + gateway::explain_with_surfaces(app, app.policy_router->explain_json(features[i]));
    std::printf("%s]\n", out.c_str());
  }
  std::fflush(stdout);
  std::_Exit(0);
}

int cmd_check(const std::string& path) {
  if (looks_like_policy(path)) return cmd_check_policy(path);
  auto cfg = gateway::load_config_file(path);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
    return 1;
  }
  gateway::App app;
  app.config = std::move(cfg).value();
  if (auto s = gateway::build_app(app); !s) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    return 1;
  }
  // Secrets are not needed to check a file, but a missing one is worth saying before `serve` fails.
  const auto& st = app.config.state;
  if (st.ledger_backend == "postgres" && st.ledger_url.empty())
    std::fprintf(stderr, "%s: note: state.ledger.url_env names '%s', which is not set here; serve needs it\n",
                 path.c_str(), st.ledger_url_env.c_str());
  std::printf("%s: OK (%zu providers, %zu models)\n", path.c_str(), app.providers.size(), app.config.models.size());
  return 0;
}

// Each proxied connection holds two descriptors (client and upstream). The soft open-file limit is
// often 1024 while the hard one is far higher: take the hard one, as most servers do, and say so
// when even that cannot hold server.max_connections (accept would fail with EMFILE first).
// Who can reach /admin/* and /metrics, said once at start so an open admin surface is never a surprise.
void log_endpoint_access(const gateway::ServerConfig& sc) {
  if (!sc.admin_key.empty())
    std::fprintf(stderr, "gateway: admin endpoints and the status page (/ui) need the admin key (%s)\n", sc.admin_key_env.c_str());
  else if (gateway::is_loopback_host(sc.listen_host))
    std::fprintf(stderr,
                 "gateway: no admin key (server.admin_key_env): admin endpoints answer without a key, on this "
                 "loopback listener only\n");
  else
    std::fprintf(stderr,
                 "gateway: no admin key (server.admin_key_env): admin endpoints are disabled (403) on the "
                 "non-loopback listener %s\n",
                 sc.listen_host.c_str());
  if (!sc.metrics_key.empty())
    std::fprintf(stderr, "gateway: /metrics needs the metrics key (%s)\n", sc.metrics_key_env.c_str());
  else
    std::fprintf(stderr, "gateway: /metrics needs no key (set server.metrics_key_env to require one)%s\n",
                 sc.metrics_tenant_labels ? "" : "; per-tenant series are off");
}

void raise_open_file_limit(size_t max_connections) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit want = lim;
    want.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &want) == 0) lim = want;
  }
  const rlim_t needed = static_cast<rlim_t>(max_connections) * 2 + 256;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < needed)
    std::fprintf(stderr,
                 "gateway: the open-file limit (%llu) holds about %llu proxied connections, fewer than "
                 "server.max_connections (%zu); raise it (ulimit -n, or LimitNOFILE= in a systemd unit)\n",
                 static_cast<unsigned long long>(lim.rlim_cur),
                 static_cast<unsigned long long>(lim.rlim_cur > 256 ? (lim.rlim_cur - 256) / 2 : 0), max_connections);
}

int cmd_serve(const std::string& config_path, const std::string& listen) {
  auto cfg = config_path.empty() ? gateway::parse_config("", "<defaults>") : gateway::load_config_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "gateway: %s\n", cfg.error().message.c_str());
    return 2;
  }
  static gateway::App app;  // lives until _Exit: sessions reference it from worker threads
  app.config = std::move(cfg).value();
  if (!listen.empty()) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "gateway: --listen needs HOST:PORT\n");
      return 2;
    }
    app.config.server.listen_host = listen.substr(0, colon);
    app.config.server.listen_port = listen.substr(colon + 1);
  }
  if (!app.config.server.admin_key_env.empty() && app.config.server.admin_key.empty()) {
    std::fprintf(stderr, "gateway: server.admin_key_env names '%s', which is not set (admin endpoints would be open)\n",
                 app.config.server.admin_key_env.c_str());
    return 2;
  }
  if (!app.config.server.metrics_key_env.empty() && app.config.server.metrics_key.empty()) {
    std::fprintf(stderr, "gateway: server.metrics_key_env names '%s', which is not set (/metrics would be open)\n",
                 app.config.server.metrics_key_env.c_str());
    return 2;
  }
  app.metrics.set_tenant_labels(app.config.server.metrics_tenant_labels);
  providers::register_secret(app.config.server.admin_key);
  providers::register_secret(app.config.server.metrics_key);
  std::string err;
  if (!app.access_log.open(app.config.server.access_log, err)) {
    std::fprintf(stderr, "gateway: %s\n", err.c_str());
    return 2;
  }
  auto tls = providers::make_tls_context(app.config.upstream_tls);
  if (!tls) {
    std::fprintf(stderr, "gateway: %s\n", tls.error().message.c_str());
    return 2;
  }
  app.upstream_tls = std::move(tls).value();
  if (auto s = gateway::build_app(app); !s) {
    std::fprintf(stderr, "gateway: %s\n", s.error().message.c_str());
    return 2;
  }
  if (auto s = gateway::build_state(app); !s) {
    std::fprintf(stderr, "gateway: %s\n", s.error().message.c_str());
    return 2;
  }
  int usable = 0;
  for (const auto& [name, p] : app.providers) {
    if (p->available()) {
      ++usable;
      const std::string summary = p->load_summary();
      std::fprintf(stderr, "gateway: provider %s: enabled%s%s%s\n", name.c_str(), summary.empty() ? "" : " (",
                   summary.c_str(), summary.empty() ? "" : ")");
    } else {
      std::fprintf(stderr, "gateway: provider %s: disabled (%s)\n", name.c_str(), p->unavailable_reason().c_str());
    }
  }
  if (usable == 0)
    std::fprintf(stderr,
                 "gateway: no provider is usable; chat requests will get a 503 naming the environment variables "
                 "that enable each provider\n");
  if (app.config.tenants.empty())
    std::fprintf(stderr, "gateway: no client API keys configured: open mode (any client may call)\n");
  else
    std::fprintf(stderr, "gateway: %zu tenant(s); clients must send their gateway key\n", app.config.tenants.tenants().size());
  log_endpoint_access(app.config.server);
  if (app.ledger) std::fprintf(stderr, "gateway: spend ledger %s\n", app.ledger->path().c_str());
  if (app.responses) std::fprintf(stderr, "gateway: stored responses in %s\n", app.responses->describe().c_str());
  raise_open_file_limit(app.config.server.max_connections);
  gateway::Server server(app);
  int rc = server.run();
  // Drain: everything accounted reaches the disk before the process ends.
  // A failing disk gets a short last chance: what it does not take is spilled by close(), and a
  // long wait would only risk the orchestrator's SIGKILL before the spill.
  if (app.ledger) {
    const auto wait = app.ledger->failing() ? std::chrono::seconds(2) : std::chrono::seconds(10);
    if (!app.ledger->flush_for(wait))
      std::fprintf(stderr, "gateway: ledger flush did not finish in %lld s\n", static_cast<long long>(wait.count()));
    app.ledger->close();  // spill anything unwritten, checkpoint (TRUNCATE): nothing left in the WAL
  }
  std::fflush(nullptr);
  // Exit without unwinding: worker state was torn down by the drain; static destructors would race
  // sessions' frames still referencing the app.
  std::_Exit(rc);
}

}  // namespace

namespace {
// glibc's per-thread cache keeps at most 7 freed blocks per size class; one proxied request frees
// a few dozen small blocks of the same few sizes, so most took the slower arena path (measured with
// tests/bench: +5-9% requests/s with a larger cache). The tunable is only read at process start,
// hence one re-exec of ourselves with it set, before anything else has happened.
void tune_malloc_cache(char** argv) {
  const char* current = std::getenv("GLIBC_TUNABLES");
  if (current && std::strstr(current, "glibc.malloc.tcache_count")) return;  // the operator chose
  if (std::getenv("GATEWAY_MALLOC_TUNED")) return;  // already re-executed once
  std::string value = "glibc.malloc.tcache_count=128";
  if (current && *current) value = std::string(current) + ":" + value;
  ::setenv("GLIBC_TUNABLES", value.c_str(), 1);
  ::setenv("GATEWAY_MALLOC_TUNED", "1", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run untuned
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "serve") == 0) tune_malloc_cache(argv);
  // A daemon must survive its terminal closing; writes to closed sockets are errors, not signals.
  std::signal(SIGHUP, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string cmd = args.empty() ? "serve" : args[0];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "version" || cmd == "--version") {
    std::puts("gateway 0.1.0");
    return 0;
  }
  if (cmd == "keys") {
    std::string tenant, id;
    if (args.size() < 2 || args[1] != "new") {
      std::fputs(kUsage, stderr);
      return 2;
    }
    for (size_t i = 2; i + 1 < args.size(); i += 2) {
      if (args[i] == "--tenant") tenant = args[i + 1];
      else if (args[i] == "--id") id = args[i + 1];
    }
    if (tenant.empty()) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    std::string key = gateway::mint_key();
    std::printf("key (give it to the client; it is not stored anywhere): %s\n", key.c_str());
    std::printf("%s\n", gateway::key_config_line(tenant, key, id).c_str());
    return 0;
  }
  if (cmd == "spend") {
    std::string config, by = "tenant", format = "json";
    int64_t from = 0, to = int64_t(1) << 62;
    bool savings = false;
    for (size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--savings") {
        savings = true;
        continue;
      }
      if (i + 1 >= args.size()) break;
      if (args[i] == "--config") config = args[++i];
      else if (args[i] == "--by") by = args[++i];
      else if (args[i] == "--from-ms") from = std::stoll(args[++i]);
      else if (args[i] == "--to-ms") to = std::stoll(args[++i]);
      else if (args[i] == "--format") format = args[++i];
    }
    if (format != "json" && format != "table") {
      std::fprintf(stderr, "--format must be json or table, not '%s'\n", format.c_str());
      return 2;
    }
    auto cfg = gateway::load_config_file(config);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().message.c_str());
      return 1;
    }
    auto ledger = gateway::open_configured_ledger(*cfg);
    if (!ledger) {
      std::fprintf(stderr, "%s\n", ledger.error().message.c_str());
      return 1;
    }
    if (!*ledger) {
      std::fprintf(stderr, "%s: no spend ledger configured (state.ledger_path or state.ledger)\n", config.c_str());
      return 1;
    }
    auto r = format == "table" ? (*ledger)->report_table(by, from, to, savings)
                               : (*ledger)->report_json(by, from, to, savings);
    if (!r) {
      std::fprintf(stderr, "%s\n", r.error().message.c_str());
      return 1;
    }
    std::fputs(format == "table" ? r->c_str() : (*r + "\n").c_str(), stdout);
    return 0;
  }
  if (cmd == "catalog") {
    std::string config, format = "table";
    for (size_t i = 1; i < args.size(); i += 2) {
      if (i + 1 >= args.size() || (args[i] != "--config" && args[i] != "--format")) {
        std::fputs(kUsage, stderr);
        return 2;
      }
      (args[i] == "--config" ? config : format) = args[i + 1];
    }
    auto f = routing::parse_catalog_format(format);
    if (!f) {
      std::fprintf(stderr, "--format must be table, json or yaml, not '%s'\n", format.c_str());
      return 2;
    }
    return cmd_catalog(config, *f);
  }
  if (cmd == "explain") {
    std::string config, request;
    std::vector<std::string> what_if;
    for (size_t i = 1; i + 1 < args.size(); i += 2) {
      if (args[i] == "--config") config = args[i + 1];
      else if (args[i] == "--request") request = args[i + 1];
      else if (args[i] == "--what-if") what_if.push_back(args[i + 1]);
      else {
        std::fprintf(stderr, "gateway explain: unknown argument '%s'\n%s", args[i].c_str(), kUsage);
        return 2;
      }
    }
    if (config.empty() || request.empty()) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    return cmd_explain(config, request, what_if);
  }
  if (cmd == "check") {
    if (args.size() != 2) {
      std::fputs(kUsage, stderr);
      return 2;
    }
    return cmd_check(args[1]);
  }
  size_t i = 0;
  if (cmd == "serve") i = 1;
  else if (cmd.rfind("--", 0) != 0) {
    std::fprintf(stderr, "gateway: unknown command '%s'\n%s", cmd.c_str(), kUsage);
    return 2;
  }
  std::string config, listen;
  for (; i < args.size(); ++i) {
    if ((args[i] == "--config" || args[i] == "-c") && i + 1 < args.size()) config = args[++i];
    else if (args[i] == "--listen" && i + 1 < args.size()) listen = args[++i];
    else {
      std::fprintf(stderr, "gateway: unknown argument '%s'\n%s", args[i].c_str(), kUsage);
      return 2;
    }
  }
  return cmd_serve(config, listen);
}
