-- GCRA, serving both gcra and token-bucket (the kit proves they decide the same).
--
-- State: one string "<tat_us>:<rem>", the theoretical arrival time in units of 1/limit
-- microsecond, tat_us * limit + rem (the kit's fixed point, in microseconds): the emission
-- interval T = period / limit is exactly `period` units, so no rounding accumulates. Only the
-- backlog (TAT - now, at most burst * period units) is ever multiplied out.
local backlog = 0
local stored = redis.call('GET', key)
if stored then
  local tat_us, rem = string.match(stored, '^(%-?%d+):(%d+)$')
  if tat_us then
    local ahead = tonumber(tat_us) - now
    if ahead >= 0 then
      backlog = ahead * limit + tonumber(rem)
    end
  end
end
local interval = period
local tolerance = burst * interval
local remaining = 0
if tolerance > backlog then
  remaining = idiv(tolerance - backlog, interval)
end
if hits <= remaining then
  backlog = backlog + hits * interval
  local reset = cdiv(backlog, limit)
  if hits > 0 then
    local whole = idiv(backlog, limit)
    redis.call('SET', key, int(now + whole) .. ':' .. int(backlog - whole * limit),
      'PX', int(math.max(cdiv(reset, 1000), 1)))
  end
  return {1, remaining - hits, reset, -1}
end
local retry = -1
if hits <= burst then
  retry = cdiv(backlog + hits * interval - tolerance, limit)
end
return {0, remaining, cdiv(backlog, limit), retry}
