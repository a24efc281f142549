-- release: give a live hold's units back. Released or expired already: no-op success.
-- KEYS: pool keys 1-4 (see _pool.lua), KEYS[5] the reservation's record.
-- ARGV[2] reservation id.
-- Reply: {'released'|'unchanged', <record fields as in reserve>} | {'already_committed', ...}
--      | {'not_found'}
local record_key = KEYS[5]
local id = ARGV[2]

local now = now_ms()
reclaim(now)
if redis.call('EXISTS', record_key) == 0 then return {'not_found'} end

local status = settle(id, record_key, now)
if status == 'committed' then return record_reply('already_committed', record_key) end
if status == 'held' or status == 'awaiting_payment' then
  drop_hold(id, true)
  redis.call('HSET', record_key, 'status', 'released', 'expires_at', now)
  return record_reply('released', record_key)
end
return record_reply('unchanged', record_key)
