-- wrk script for bench/web.py: rotates per-user headers, counts unexpected statuses, prints one JSON line.
-- Environment: BENCH_WRK_HEADERS (file, one "Name: value" line per user; empty = none), BENCH_WRK_METHOD,
-- BENCH_WRK_EXPECT (status), BENCH_WRK_WEBHOOK=1 (POST a distinct Iamport webhook body per request).

local threads = {}
local header_lines = {}
local method = os.getenv("BENCH_WRK_METHOD") or "GET"
local expect = tonumber(os.getenv("BENCH_WRK_EXPECT") or "200")
local webhook = os.getenv("BENCH_WRK_WEBHOOK") == "1"

local path = os.getenv("BENCH_WRK_HEADERS")
if path and path ~= "" then
  for line in io.lines(path) do
    if line ~= "" then table.insert(header_lines, line) end
  end
end

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  bad = 0
  counter = 0
end

function request()
  counter = counter + 1
  local headers = {}
  if #header_lines > 0 then
    local line = header_lines[(counter + id * 7) % #header_lines + 1]
    local name, value = line:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  local body = nil
  if webhook then
    headers["Content-Type"] = "application/json"
    local n = id * 100000000 + counter
    body = string.format('{"imp_uid":"imp_%012d","merchant_uid":"kbwh_%d","status":"paid"}', n, n)
  end
  return wrk.format(method, nil, headers, body)
end

function response(status, headers, body)
  if status ~= expect then bad = bad + 1 end
end

function done(summary, latency, requests)
  local unexpected = 0
  for _, t in ipairs(threads) do unexpected = unexpected + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.2f,"p95_ms":%.2f,"p99_ms":%.2f,"max_ms":%.2f,' ..
    '"unexpected_status":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, unexpected, e.connect + e.read + e.write + e.timeout))
end
