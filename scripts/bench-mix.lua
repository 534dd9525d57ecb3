-- wrk script used by scripts/bench-stack: decision API requests of which one
-- in 20 asks a question never asked before (a cache miss) and the others
-- one of BENCH_MIX_HOT questions asked over and over (L1 hits once warm).
--
-- Environment:
--   BENCH_TOKEN      Bearer token sent in Authorization
--   BENCH_MIX_HOT    number of repeated questions (default 100): their
--                    parameters are {"schema": "hot-0"} ... "hot-(N-1)"
--   BENCH_MIX_TAG    part of every fresh question, unique to the run
--
-- At the end it prints one machine-readable line (scripts/bench-result.lua).

local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
end

local hot, tag, n, prefix, suffix

function init(args)
    hot = tonumber(os.getenv("BENCH_MIX_HOT") or "100")
    tag = (os.getenv("BENCH_MIX_TAG") or "mix") .. "-" .. id
    n = 0
    wrk.method = "POST"
    wrk.path = "/api/v1/gateway/authorize"
    wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
    wrk.headers["Content-Type"] = "application/json"
    prefix = '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
             .. '"tool_name":"list_tables","parameters":{"schema":"'
    suffix = '"}}'
end

function request()
    n = n + 1
    local schema
    if n % 20 == 0 then
        schema = tag .. "-" .. n
    else
        schema = "hot-" .. (n % hot)
    end
    return wrk.format(nil, nil, nil, prefix .. schema .. suffix)
end

-- the result line (BENCH ...), from the file next to this one
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench-result.lua")
