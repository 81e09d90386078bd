-- Sliding-window log. State: a sorted set with one member per allowed hit, scored by its time
-- (us); the window is (now - period, now]. Members are "<time>:<n>", n counting the members
-- already at that time, so they are unique. Memory: one member per hit within the window (at
-- most `limit`); an allowed request of `hits` costs O(hits) ZADD arguments.
redis.call('ZREMRANGEBYSCORE', key, '-inf', int(now - period))
local total = redis.call('ZCARD', key)
local remaining = 0
if limit > total then
  remaining = limit - total
end
-- Time until the newest hit leaves the window.
local function reset_after()
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if newest[2] then
    local left = tonumber(newest[2]) + period - now
    if left > 0 then
      return left
    end
  end
  return 0
end
if hits <= remaining then
  if hits > 0 then
    local at = int(now)
    local base = redis.call('ZCOUNT', key, at, at)
    local args = {}
    for i = 1, hits do
      args[#args + 1] = at
      args[#args + 1] = at .. ':' .. int(base + i)
      if #args >= 1000 then
        redis.call('ZADD', key, unpack(args))
        args = {}
      end
    end
    if #args > 0 then
      redis.call('ZADD', key, unpack(args))
    end
    expire_after(key, period)
  end
  return {1, remaining - hits, reset_after(), -1}
end
local retry = -1
if hits <= limit then
  -- The request fits once the oldest `excess` hits have left the window.
  local excess = total + hits - limit
  local oldest = redis.call('ZRANGE', key, excess - 1, excess - 1, 'WITHSCORES')
  retry = tonumber(oldest[2]) + period - now
end
return {0, remaining, reset_after(), retry}
