-- wrk script: POST a small chat completion request (the same body for every target).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"Hello"}],"max_tokens":16}'
