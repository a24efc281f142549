-- lookup: one reservation as it stands now (a lapsed hold reads as expired).
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7] the reservation's record.
-- ARGV[2] reservation id.
-- Reply: {'found', <record fields as in reserve>} | {'not_found'} | {'bad_request', 'id'}
local record_key = KEYS[7]
if not is_id(ARGV[2]) then return {'bad_request', 'id'} end
local r = current_record(ARGV[2], record_key, now_ms())
if not r then return {'not_found'} end
return record_reply('found', r)
