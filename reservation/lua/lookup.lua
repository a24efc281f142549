-- lookup: one reservation as it stands now (a lapsed hold reads as expired).
-- KEYS: pool keys 1-4 (see _pool.lua), KEYS[5] the reservation's record.
-- ARGV[2] reservation id.
-- Reply: {'found', <record fields as in reserve>} | {'not_found'}
local record_key = KEYS[5]
local now = now_ms()
reclaim(now)
if redis.call('EXISTS', record_key) == 0 then return {'not_found'} end
settle(ARGV[2], record_key, now)
return record_reply('found', record_key)
