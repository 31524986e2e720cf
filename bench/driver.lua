-- The bench's wrk script (bench/wrk.py writes the data file and runs wrk with it).
--
--   wrk -t N -c N -d <s> -s bench/driver.lua http://127.0.0.1:<port> -- <data.lua> <phase> <offset>
--
-- One connection per wrk thread (-t = -c), so per-thread state is per-connection state:
-- thread i (1-based) sends the requests numbered i-1, i-1+N, i-1+2N, ... (+ offset), which
-- keeps every number unique across connections. The data file returns a table:
--   method, path             the request line
--   headers                  headers on every request
--   per_thread               optional list of header tables; thread i uses entry (i-1) % #list + 1
--   bodies                   optional list of bodies; request n uses bodies[n % #bodies + 1]
--   body_headers             optional list of header tables, one per body (e.g. a signature)
--   template                 true: "{n}" in a body is replaced by the request number
--   unique                   {header = prefix}: header value prefix .. phase .. n
--   count                    0: timed (wrk's -d); > 0: send the numbers below count, then stop
--   done_file                with count: each thread appends a line when its share is answered
-- done() prints one line "WRKJSON {...}" with the figures bench/wrk.py reads.

local threads = {}
local nthreads = 0

function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
  table.insert(threads, thread)
end

function init(args)
  cfg = dofile(args[1])
  phase = args[2] or ""
  offset = tonumber(args[3] or "0")
  step = cfg.threads
  nextn = tid - 1
  answered = 0
  share = 0
  if cfg.count > 0 then
    for n = tid - 1, cfg.count - 1, step do share = share + 1 end
  end
  verified = tid ~= 1
  statuses = {}
  first_error = ""
  base = {}
  for k, v in pairs(cfg.headers) do base[k] = v end
  if cfg.per_thread and #cfg.per_thread > 0 then
    for k, v in pairs(cfg.per_thread[(tid - 1) % #cfg.per_thread + 1]) do base[k] = v end
  end
  finished = share == 0 and cfg.count > 0
  if finished then mark_done() end
end

function mark_done()
  if cfg.done_file then
    local f = io.open(cfg.done_file, "a")
    f:write(tid, "\n")
    f:close()
  end
end

function request()
  local n = nextn
  if verified then
    nextn = nextn + step
  else
    -- wrk calls the first thread's request() once before sending anything, to check it
    -- (script_verify_request): that call must not use up a number.
    verified = true
  end
  if cfg.count > 0 and n >= cfg.count then
    -- This thread's share is sent; a harmless request keeps the loop turning until wrk stops.
    return wrk.format("GET", "/healthz")
  end
  local headers = {}
  for k, v in pairs(base) do headers[k] = v end
  local body = nil
  if cfg.bodies then
    local i = n % #cfg.bodies + 1
    body = cfg.bodies[i]
    if cfg.template then body = body:gsub("{n}", tostring(offset + n)) end
    if cfg.body_headers then
      for k, v in pairs(cfg.body_headers[i]) do headers[k] = v end
    end
  end
  if cfg.unique then
    for k, prefix in pairs(cfg.unique) do headers[k] = prefix .. phase .. (offset + n) end
  end
  return wrk.format(cfg.method, cfg.path, headers, body)
end

function response(status, headers, body)
  if finished then return end
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if (status < 200 or status >= 300) and first_error == "" then
    first_error = "HTTP " .. key .. ": " .. string.sub(body or "", 1, 300)
  end
  answered = answered + 1
  if cfg.count > 0 and answered >= share then
    finished = true
    mark_done()
    wrk.thread:stop()
  end
end

local function quote(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
  local parts = {}
  local first = ""
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses") or {}) do
      parts[k] = (parts[k] or 0) + v
    end
    if first == "" then first = t:get("first_error") or "" end
  end
  local st = {}
  for k, v in pairs(parts) do table.insert(st, quote(k) .. ":" .. v) end
  local e = summary.errors
  io.write(
    "WRKJSON {",
    '"requests":', summary.requests,
    ',"duration_us":', summary.duration,
    ',"p50_us":', latency:percentile(50),
    ',"p90_us":', latency:percentile(90),
    ',"p99_us":', latency:percentile(99),
    ',"max_us":', latency.max,
    ',"connect_errors":', e.connect,
    ',"read_errors":', e.read,
    ',"write_errors":', e.write,
    ',"timeouts":', e.timeout,
    ',"statuses":{', table.concat(st, ","), "}",
    ',"first_error":', quote(first),
    "}\n"
  )
end
