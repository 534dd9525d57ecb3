-- wrk script used by scripts/bench: one fixed request, sent over and over.
--
-- Environment:
--   BENCH_METHOD     request method (default GET)
--   BENCH_TOKEN      Bearer token sent in Authorization (none when empty)
--   BENCH_BODY_FILE  request body, sent as application/json (none when empty)
--
-- At the end it prints one machine-readable line:
--   BENCH requests=N duration_us=N connect=N read=N write=N status=N timeout=N p50_us=N p99_us=N
-- where status counts answers with a status of 400 or more.

wrk.method = os.getenv("BENCH_METHOD") or "GET"

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
end

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
    local f = assert(io.open(body_file, "rb"))
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "application/json"
end

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
