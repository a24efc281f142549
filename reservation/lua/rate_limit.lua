-- rate_limit: a sliding log. A request is admitted when fewer than `limit` requests were
-- admitted in the `window` before it (Redis TIME, ms), so no span of `window` ms ever admits
-- more than `limit`. A refused request writes nothing: it is not logged (it costs the client
-- nothing later), and a flood of refusals costs Redis no writes; an admitted one also drops
-- what left the window.
-- Not a pool script: no prelude; its one key is its own cluster slot.
-- KEYS[1] log  sorted set  one member "<ms>-<n>" per admitted request, scored by its time
--                          (ms); the key lapses one window after the last admitted request
-- ARGV[1] limit (requests, 1 to 10^12), ARGV[2] window (ms, 1 to 10^15): decimal digits
-- Reply: {1, requests left in the window} | {0, ms until one more is admitted (1 to window)}
--      | {'bad_request', 'limit'|'window'} (missing or unusable; nothing read or written)
local call = redis.call
local log_key = KEYS[1]

-- A whole number in decimal digits from 1 to `max`; nil for anything else (or nothing).
local function positive(text, max)
  if type(text) ~= 'string' or #text > 16 or not string.find(text, '^%d+$') then return nil end
  local n = tonumber(text)
  if n < 1 or n > max then return nil end
  return n
end

local limit = positive(ARGV[1], 1e12)
local window = positive(ARGV[2], 1e15)
if not limit then return {'bad_request', 'limit'} end
if not window then return {'bad_request', 'window'} end

local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- What is in the window: scores in (now - window, now], i.e. from now - window + 1 (whole ms).
local first = now - window + 1
local logged = call('ZCOUNT', log_key, first, '+inf')
if logged >= limit then
  -- One more fits once the oldest `logged - limit + 1` have left the window (more than one
  -- when the limit was lowered since they were logged).
  local leaving = call('ZRANGE', log_key, first, '+inf', 'BYSCORE',
    'LIMIT', logged - limit, 1, 'WITHSCORES')
  local wait = tonumber(leaving[2]) + window - now
  return {0, math.max(1, math.min(wait, window))}
end
-- Members must be distinct: requests admitted within one ms differ by their count, which only
-- grows within a ms (nothing of that ms leaves the window).
call('ZREMRANGEBYSCORE', log_key, '-inf', first - 1)
call('ZADD', log_key, now, now .. '-' .. logged)
call('PEXPIRE', log_key, window)
return {1, limit - logged - 1}
