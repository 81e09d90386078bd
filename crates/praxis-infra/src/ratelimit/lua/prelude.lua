-- Shared by every rate-limit script (praxis_infra::ratelimit). Prepended to each one.
--
-- KEYS[1]: the state of one key under one rule.
-- ARGV: limit, period in microseconds, burst, hits (decimal integers).
-- Returns {allowed (0|1), remaining, reset_after_us, retry_after_us (-1: none)}.
--
-- Lua numbers are doubles: every value below is an integer kept under 2^53, so the arithmetic
-- is exact, and times are integer microseconds of the server clock (redis.call('TIME')).
-- Numbers are passed to Redis through int(), never tostring() (which prints 14 digits).

-- floor(a / b) for integers a >= 0, b > 0, corrected for the rounding of the division.
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

-- ceil(a / b) for integers a >= 0, b > 0.
local function cdiv(a, b)
  local q = idiv(a, b)
  if q * b < a then
    q = q + 1
  end
  return q
end

local function int(x)
  return string.format('%.0f', x)
end

-- The key expires when its state is idle (fresh again), rounded up to whole milliseconds.
local function expire_after(key, us)
  local ms = cdiv(us, 1000)
  if ms < 1 then
    ms = 1
  end
  redis.call('PEXPIRE', key, int(ms))
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local hits = tonumber(ARGV[4])
