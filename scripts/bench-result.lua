-- The result line of the wrk scripts of scripts/bench and scripts/bench-stack
-- (loaded by them with dofile), printed once wrk has stopped:
--   BENCH requests=N duration_us=N connect=N read=N write=N status=N timeout=N p50_us=N p99_us=N
-- where status counts answers with a status of 400 or more.

function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d\n",
        summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(99)))
end
