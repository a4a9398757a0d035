-- wrk script: refresh-token rotation. Every request carries a refresh token that was never
-- sent before, taken from this thread's pool, and the successor in the answer goes back into
-- the pool: every chain moves forward and no token is presented twice (that would be a
-- reuse, which revokes the family). TOKENS (a file, one refresh token per line: one per
-- connection plus one per thread, because wrk calls request() once on its own to check the
-- script, and that token is never sent), THREADS (wrk's -t) and AUTHORIZATION (the client's Basic header)
-- come from the environment (scripts/bench-refresh.sh sets them).
local next_index = 0
setup = function(thread)
  thread:set("index", next_index)
  next_index = next_index + 1
end

local pool = {}
local threads = tonumber(os.getenv("THREADS"))
init = function(args)
  local line = 0
  for token in io.lines(os.getenv("TOKENS")) do
    if line % threads == index then table.insert(pool, token) end
    line = line + 1
  end
end

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Authorization"] = os.getenv("AUTHORIZATION"),
}
request = function()
  -- An empty pool means answers came back without a successor; wrk counts those as non-200.
  local token = table.remove(pool) or "exhausted"
  return wrk.format("POST", "/token", headers, "grant_type=refresh_token&refresh_token=" .. token)
end

response = function(status, _, body)
  local successor = body:match('"refresh_token":"([^"]+)"')
  if successor then table.insert(pool, successor) end
end

done = function(summary)
  io.write(string.format("non-200 responses: %d\n", summary.errors.status))
end
