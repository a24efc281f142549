-- extend: a delayed payment method is under way; held -> awaiting_payment with a longer hold.
-- The hold never gets shorter; asking again only pushes it further out.
-- KEYS: pool keys 1-4 (see _pool.lua), KEYS[5] the reservation's record.
-- ARGV[2] reservation id, ARGV[3] new hold length from now (ms), ARGV[4] record retention (ms).
-- Reply: {'extended'|'not_held'|'already_committed', <record fields as in reserve>}
--      | {'not_found'}
local record_key = KEYS[5]
local id = ARGV[2]
local hold_ms = tonumber(ARGV[3])
local retention_ms = tonumber(ARGV[4])

local now = now_ms()
reclaim(now)
if redis.call('EXISTS', record_key) == 0 then return {'not_found'} end

local status = settle(id, record_key, now)
if status == 'committed' then return record_reply('already_committed', record_key) end
if status ~= 'held' and status ~= 'awaiting_payment' then
  return record_reply('not_held', record_key)
end
local expires_at = math.max(tonumber(redis.call('ZSCORE', holds_key, id)), now + hold_ms)
redis.call('ZADD', holds_key, expires_at, id)
redis.call('HSET', record_key, 'status', 'awaiting_payment', 'expires_at', expires_at)
redis.call('PEXPIRE', record_key, expires_at - now + retention_ms)
return record_reply('extended', record_key)
