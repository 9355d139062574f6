-- wrk script: the request of post.lua, each connection waiting PACE_MS (default 1) milliseconds
-- after each answer before it sends the next: with N connections the offered rate is a little under
-- N * 1000 / PACE_MS req/s, so the proxy is measured at a set rate instead of at saturation.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'
local pace = tonumber(os.getenv("PACE_MS") or "1")
function delay()
  return pace
end
