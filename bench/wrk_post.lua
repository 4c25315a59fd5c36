-- wrk script for the benchmark: POST a JSON body, print percentiles as JSON at the end.
--   WRK_BODY_FILE=body.json WRK_AUTH="Bearer sk-..." wrk --latency -s bench/wrk_post.lua URL
-- The `done` hook prints one line starting with BENCH_JSON (latencies in microseconds),
-- which bench/load.py parses; it adds p95 to what `wrk --latency` shows.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local auth = os.getenv("WRK_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local path = os.getenv("WRK_BODY_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "rb"))
  wrk.body = f:read("*a")
  f:close()
else
  wrk.body = '{"model":"bench","messages":[{"role":"user","content":"Hello"}]}'
end

done = function(summary, latency, requests)
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"connect_errors":%d', e.connect),
    string.format('"read_errors":%d', e.read),
    string.format('"write_errors":%d', e.write),
    string.format('"status_errors":%d', e.status),
    string.format('"timeouts":%d', e.timeout),
    string.format('"mean_us":%.1f', latency.mean),
    string.format('"max_us":%d', latency.max),
  }
  for _, p in ipairs({50, 90, 95, 99, 99.9}) do
    parts[#parts + 1] = string.format('"p%s_us":%d', tostring(p), latency:percentile(p))
  end
  io.write("BENCH_JSON {" .. table.concat(parts, ",") .. "}\n")
end
