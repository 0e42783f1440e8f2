-- wrk script: replay pre-generated, uniquely-nonced signed requests (bench/bench_presend.py).
-- The file named by REQUESTS_FILE holds one request per line:
--   METHOD \t PATH \t X-Api-Key \t X-Timestamp \t X-Nonce \t X-Signature \t BODY
-- Each wrk thread takes every n-th line (its own slice) so no nonce is ever sent twice;
-- a thread that runs out of requests stops wrk rather than replay one.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("REQUESTS_FILE")
  local n = tonumber(os.getenv("WRK_THREADS") or "1")
  reqs = {}
  local i = 0
  for line in io.lines(path) do
    if i % n == tid then
      local m, p, k, ts, nonce, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {["X-Api-Key"] = k, ["X-Timestamp"] = ts, ["X-Nonce"] = nonce,
                       ["X-Signature"] = sig, ["Content-Type"] = "application/json"}
      reqs[#reqs + 1] = wrk.format(m, p, headers, body)
    end
    i = i + 1
  end
  idx = 0
  exhausted = 0
  statuses = {}
end

function request()
  idx = idx + 1
  if idx > #reqs then
    exhausted = 1
    wrk.thread:stop()
    return reqs[#reqs]  -- never sent: the thread is stopping
  end
  return reqs[idx]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  local ran_out = 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    if s then
      for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
    end
    if t:get("exhausted") == 1 then ran_out = ran_out + 1 end
  end
  io.write("------------------------------\n")
  io.write(string.format("BENCH requests=%d duration_s=%.3f rps=%.1f\n", summary.requests,
           summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("BENCH p%s_ms=%.3f\n", tostring(p), latency:percentile(p) / 1000))
  end
  io.write(string.format("BENCH max_ms=%.3f\n", latency.max / 1000))
  for k, v in pairs(total) do io.write(string.format("BENCH status_%d=%d\n", k, v)) end
  io.write(string.format("BENCH errors connect=%d read=%d write=%d status=%d timeout=%d\n",
           summary.errors.connect, summary.errors.read, summary.errors.write,
           summary.errors.status, summary.errors.timeout))
  io.write(string.format("BENCH threads_out_of_requests=%d\n", ran_out))
end
