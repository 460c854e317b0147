-- wrk script of the soak (soak/soak.py writes the request list and sets
-- SOAK_REQUESTS to its path): every request takes the next entry of the
-- list, {path, {header = value}}, so valid, revocable, pre-revoked and
-- invalid tokens (and no token at all) are interleaved all the time. Each
-- wrk thread starts at its own random offset.
local list = dofile(os.getenv("SOAK_REQUESTS"))
local n = #list
local i = 0

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  i = math.random(n)
end

function request()
  i = i % n + 1
  local e = list[i]
  return wrk.format("GET", e[1], e[2])
end
