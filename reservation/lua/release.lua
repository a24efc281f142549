-- release: give a live hold's units back. Released or expired already: no-op success
-- (an expired one reads as released from then on).
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7] the reservation's record.
-- ARGV[2] reservation id.
-- Reply: {'released'|'unchanged'|'already_committed', <record fields as in reserve>}
--      | {'not_found'} | {'bad_request', 'id'}
local record_key = KEYS[7]
local id = ARGV[2]
if not is_id(id) then return {'bad_request', 'id'} end

local now = now_ms()
local r = current_record(id, record_key, now)
if not r then return {'not_found'} end
if r.status == 'committed' then return record_reply('already_committed', r) end
if not is_live(r) then
  -- An expired hold gave its units back already; releasing it only records the buyer's word.
  if r.status == 'expired' then
    r.status = 'released'
    write_record(record_key, r, nil)
  end
  return record_reply('unchanged', r)
end
drop_hold(id, r, true, false, now, 'left')
r.status = 'released'
set_expiry(r, now)
write_record(record_key, r, nil)
return record_reply('released', r)
