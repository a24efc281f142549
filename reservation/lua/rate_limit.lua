-- rate_limit: a sliding log. A request is admitted when fewer than `limit` requests were
-- admitted in the `window` before it (Redis TIME, ms), so no span of `window` ms ever admits
-- more than `limit`; a refused request is not logged (it costs the client nothing later).
-- Not a pool script: no prelude; its one key is its own cluster slot.
-- KEYS[1] log  sorted set  one member per admitted request, scored by its time (ms); the key
--                          lapses one window after the last admitted request
-- ARGV[1] limit (requests, >= 1), ARGV[2] window (ms, >= 1)
-- Reply: {1, requests left in the window} | {0, ms until one more is admitted (>= 1)}
local call = redis.call
local log_key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if not limit or limit < 1 or not window or window < 1 then
  return redis.error_reply('rate_limit: limit and window must be positive')
end

local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- What is still in the window: scores in (now - window, now].
call('ZREMRANGEBYSCORE', log_key, '-inf', now - window)
local logged = call('ZCARD', log_key)
if logged >= limit then
  -- One more fits once the oldest `logged - limit + 1` have left the window (more than one
  -- when the limit was lowered since they were logged).
  local leaving = call('ZRANGE', log_key, logged - limit, logged - limit, 'WITHSCORES')
  local wait = tonumber(leaving[2]) + window - now
  return {0, math.max(1, math.min(wait, window))}
end
-- Members must be distinct: requests admitted within one ms differ by their count, which only
-- grows within a ms (nothing of that ms leaves the window).
call('ZADD', log_key, now, now .. '-' .. logged)
call('PEXPIRE', log_key, window)
return {1, limit - logged - 1}
