-- lookup: one reservation as it stands now (a lapsed hold reads as expired).
-- KEYS: pool keys 1-3 (see _pool.lua), KEYS[4] the reservation's record.
-- ARGV[2] reservation id.
-- Reply: {'found', <record fields as in reserve>} | {'not_found'}
local record_key = KEYS[4]
local r = current_record(ARGV[2], record_key, now_ms())
if not r then return {'not_found'} end
return record_reply('found', r)
