-- wrk script used by scripts/bench: one fixed request, sent over and over.
--
-- Environment:
--   BENCH_METHOD     request method (default GET)
--   BENCH_TOKEN      Bearer token sent in Authorization (none when empty)
--   BENCH_BODY_FILE  request body, sent as application/json (none when empty)
--
-- At the end it prints one machine-readable line (scripts/bench-result.lua).

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

-- the result line (BENCH ...), from the file next to this one
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench-result.lua")
