-- Sliding-window counter. State: a hash {w = current window start (us), p = hits of the
-- previous window, c = hits of the current one}. A request fits when
-- p * (period - elapsed) + (c + hits) * period <= limit * period, compared exactly in
-- integers (the kit's rule).
local start = idiv(now, period) * period
local state = redis.call('HMGET', key, 'w', 'p', 'c')
local w, p, c = start, 0, 0
if state[1] then
  local sw = tonumber(state[1])
  local sp = tonumber(state[2] or '0') or 0
  local sc = tonumber(state[3] or '0') or 0
  if sw and sw >= start then
    w, p, c = sw, sp, sc
  elseif sw and sw + period == start then
    p = sc
  end
end
local at = math.max(now, w)
local elapsed = math.min(at - w, period - 1)
local weight = period - elapsed
local used = p * weight + c * period
local room = limit * period
local remaining = 0
if room > used then
  remaining = idiv(room - used, period)
end
-- Time until both counts have slid out of the window.
local function idle_after(count)
  local idle = 0
  if count > 0 then
    idle = w + 2 * period
  elseif p > 0 then
    idle = w + period
  end
  if idle > at then
    return idle - at
  end
  return 0
end
if hits <= remaining then
  if hits > 0 then
    c = c + hits
    redis.call('HSET', key, 'w', int(w), 'p', int(p), 'c', int(c))
    expire_after(key, idle_after(c))
  end
  return {1, remaining - hits, idle_after(c), -1}
end
local retry = -1
if hits <= limit then
  local fits_at
  if c + hits <= limit then
    -- Later in this window the previous count weighs little enough.
    local free = period
    if p > 0 then
      free = idiv((limit - c - hits) * period, p)
    end
    fits_at = w + math.max(period - free, 0)
  else
    -- Only in the next window, once the current count weighs little enough.
    fits_at = w + period + math.max(period - idiv((limit - hits) * period, c), 0)
  end
  retry = math.max(fits_at - at, 0)
end
return {0, remaining, idle_after(c), retry}
