#!/usr/bin/env bash
# Builds the parsers fuzz target (SSE, chat request, config YAML, error bodies, normalisers) with
# clang's libFuzzer + ASan/UBSan and runs it for a bounded time (default 30 s) on a seed corpus.
#   tests/fuzz/run_parser_fuzz.sh [SECONDS=30]
set -euo pipefail
secs="${1:-30}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="${PARSER_FUZZ_DIR:-$root/build-fuzz-parsers}"
cxx="${CXX_FUZZ:-$(command -v clang++-14 || command -v clang++ || true)}"
[[ -n "$cxx" ]] || { echo "run_parser_fuzz.sh: clang++ not found" >&2; exit 1; }
mkdir -p "$out/obj" "$out/corpus" "$out/crashes"
srcs=("$root"/core/*.cpp "$root"/providers/{anthropic_relay,anthropic_wire,responses_wire,embeddings_wire,tls_stream,dialect,error_map,openai_normalize,provider,request_builder,sse_reader,glm_jwt,upstream_client,openai_compatible}.cpp
      "$root"/gateway/app/config.cpp "$root"/gateway/api/{openai_chat,client_json,openai_responses_answer,responses_native,embeddings}.cpp "$root"/gateway/state/tenants.cpp "$root"/routing/{vocabulary,iso3166}.cpp "$root/providers/asio_beast_src.cpp")
flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -I"$root" -DBOOST_ASIO_SEPARATE_COMPILATION -DBOOST_BEAST_SEPARATE_COMPILATION -DBOOST_ASIO_NO_DEPRECATED)
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
objs=(); pids=()
# The newest of the project's headers: an object older than it is rebuilt too (a header-only
# change, e.g. core/json_members.h, must not leave a stale parser in the fuzz binary).
# No pipe into `head` here: under pipefail, `ls` dies of SIGPIPE (exit 141) once the list
# outgrows one write, which a long checkout path makes happen.
newest_header=""
for h in "$root"/core/*.h "$root"/gateway/*/*.h "$root"/providers/*.h "$root"/local_backend/*.h; do
  if [[ -z "$newest_header" || "$h" -nt "$newest_header" ]]; then newest_header="$h"; fi
done
for s in "${srcs[@]}"; do
  o="$out/obj/$(basename "$(dirname "$s")")_$(basename "${s%.cpp}").o"
  objs+=("$o")
  if [[ ! -f "$o" || "$s" -nt "$o" || "$newest_header" -nt "$o" ]]; then
    # Only the parsers get coverage instrumentation; Asio/Beast support code (needed to link the
    # provider factory that config validation calls) is plain, which clang 14 also requires.
    cov=(-fsanitize=fuzzer-no-link)
    case "$s" in *asio_beast_src.cpp|*upstream_client.cpp|*tls_stream.cpp|*openai_compatible.cpp|*anthropic_relay.cpp) cov=() ; san_here=() ;; *) san_here=("${san[@]}") ;; esac
    "$cxx" "${flags[@]}" "${san_here[@]}" "${cov[@]}" -c "$s" -o "$o" &
    pids+=($!)
    if (( ${#pids[@]} >= 2 )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
"$cxx" "${flags[@]}" "${san[@]}" -fsanitize=fuzzer "$root/tests/fuzz/parsers_fuzz.cpp" "${objs[@]}" \
  -lsimdjson -lyaml-cpp -lssl -lcrypto -lpthread -o "$out/parsers_fuzz"

# Seeds: one realistic input per parser.
seed() { printf "$1" > "$out/corpus/$2"; }
seed '\x00\x00data: {"id":"a","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n: keep-alive\n\ndata: {"choices":[],"usage":{"prompt_tokens":3,"prompt_cache_hit_tokens":1}}\n\ndata: [DONE]\n\n' sse
seed '\x08\x00{"model":"auto","store":true,"previous_response_id":"r","input":"hi"}\n\nevent: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"v","output":[]}}\n\ndata: {"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":3,"output_tokens":2}}}\n\n' responses
seed '\x01\x00{"model":"auto","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"max_tokens":5,"stop":["x"]}' chat
seed '\x01\x00{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"a":{},"A":{}}}}}],"thinking":{"type":"disabled"},"metadata":{"k":[{"x":1}]}}' chat_nested
seed '\x01\x00{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1,"max\\u005ftokens":2}' chat_dup
seed '\x02\x00server: {listen: "127.0.0.1:0"}\nproviders:\n  qwen: {region: us-east-1}\nmodels:\n  a: [qwen/qwen-flash]\n' config
seed '\x02\x00tenants:\n  acme:\n    keys: [{id: k1, sha256: "4422aeb6ff789c5ed96848d755c7ac98be26d05b3b89526af258d22775aa6e56"}]\n    budget: {daily_usd: 5, hard: true}\n    limits: {rpm: 60}\nstate: {mode: local}\ncache: {enabled: true}\n' tenants
seed '\x03\x03{"error":{"code":"1113","message":"Insufficient balance"}}' err
seed '\x04\x02{"id":"x","choices":[{"index":0,"message":{"content":"y"},"finish_reason":"stop","usage":{"prompt_tokens":1}}]}' resp
seed '\x03\x00nan' retry_after_nan
seed '\x05\x01{"model":"a","messages":[],"stream_options":{"include_usage":false,"x":1}}' body
seed '\x07\x03event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":6,"cache_read_input_tokens":64}}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}\n\n' anthropic_sse
seed '\x07\x00{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"metadata":{"model":"k"}}' anthropic_body
seed '\x07\x03{"type":"error","error":{"type":"rate_limit_error","code":"1113","message":"Insufficient balance"}}' anthropic_err
seed '\x09\x00{"model":"m","input":["a","b"],"dimensions":64,"encoding_format":"base64"}' embeddings_request
seed '\x09\x01{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5,-1e-3]},{"object":"embedding","index":0,"embedding":[1,2]}],"model":"text-embedding-v4","usage":{"prompt_tokens":4,"total_tokens":4}}' embeddings_answer

cd "$out/crashes"
# Keep the whole report when the fuzzer fails: the sanitizer's message is what one needs.
if ! "$out/parsers_fuzz" -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 "$out/corpus" >"$out/fuzz.log" 2>&1; then
  grep -E "ERROR|SUMMARY|runtime error|#[0-9]+ 0x" "$out/fuzz.log" | head -40
  echo "parsers fuzz: FAILED (inputs in $out/crashes; full log $out/fuzz.log)" >&2
  exit 1
fi
tail -5 "$out/fuzz.log"
echo "parsers fuzz: no crash in ${secs} s"
