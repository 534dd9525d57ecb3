-- wrk script used by scripts/pgo-train: the request mix the profile-guided
-- build of the module is trained on, mostly L1 hits as in production.  Of
-- every 100 requests:
--   60  enforced location, L1 hit (54 with token A, 6 with token B)
--    4  enforced location whose server and tool come from the URI
--    3  enforced location the policy denies (a cached denial)
--   29  decision API, one of 10 repeated questions (L1 hits once warm)
--    1  decision API, a question never asked before (a miss to OPA)
--    2  decision API, a question the policy denies
--    1  enforced location with a forged token (401)
--
-- Environment: TRAIN_TOKEN_A, TRAIN_TOKEN_B (Bearer tokens of two users).

local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
end

local n, a, b, forged

local function api(tool, params)
    return '{"action":"gateway:tool:invoke","server_name":"postgres-mcp",'
           .. '"tool_name":"' .. tool .. '","parameters":' .. params .. '}'
end

local function get(path, token)
    return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

local function post(token, body)
    return wrk.format("POST", "/api", {
        ["Authorization"] = "Bearer " .. token,
        ["Content-Type"] = "application/json",
    }, body)
end

function init(args)
    n = 0
    a = os.getenv("TRAIN_TOKEN_A") or ""
    b = os.getenv("TRAIN_TOKEN_B") or ""
    -- token A with the last character of its signature changed
    forged = a:sub(1, -2) .. (a:sub(-1) == "A" and "B" or "A")
end

function request()
    n = n + 1
    local k = n % 100
    if k < 54 then
        return get("/enforced", a)
    elseif k < 60 then
        return get("/enforced", b)
    elseif k < 64 then
        return get("/tools/postgres-mcp/list_tables", a)
    elseif k < 67 then
        return get("/enforced-deny", a)
    elseif k < 96 then
        return post(a, api("list_tables", '{"schema":"s' .. (n % 10) .. '"}'))
    elseif k == 96 then
        return post(a, api("list_tables", '{"schema":"t' .. id .. '-' .. n .. '"}'))
    elseif k < 99 then
        return post(a, api("execute_mutation", '{"sql":"UPDATE t SET x = 1"}'))
    end
    return get("/enforced", forged)
end
