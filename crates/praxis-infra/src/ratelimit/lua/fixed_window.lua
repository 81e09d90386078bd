-- Fixed window. State: a hash {w = window start (us), c = hits counted in it}; HINCRBY after
-- the check, only when the hits fit. Windows are aligned on multiples of the period since the
-- Unix epoch (server clock). A window start earlier than the stored one (the server clock
-- stepped back) counts in the stored window, as the kit does.
local start = idiv(now, period) * period
local state = redis.call('HMGET', key, 'w', 'c')
local w, c, same = start, 0, false
if state[1] then
  local sw = tonumber(state[1])
  if sw and sw >= start then
    w, c, same = sw, tonumber(state[2] or '0') or 0, true
  end
end
local at = math.max(now, w)
local stop = w + period
local remaining = 0
if limit > c then
  remaining = limit - c
end
if hits <= remaining then
  if hits > 0 then
    if same then
      c = redis.call('HINCRBY', key, 'c', int(hits))
    else
      c = hits
      redis.call('HSET', key, 'w', int(w), 'c', int(c))
    end
    expire_after(key, stop - at)
  end
  local reset = 0
  if c > 0 then
    reset = stop - at
  end
  return {1, remaining - hits, reset, -1}
end
local reset = 0
if c > 0 then
  reset = stop - at
end
local retry = -1
if hits <= limit then
  retry = stop - at
end
return {0, remaining, reset, retry}
