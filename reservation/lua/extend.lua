-- extend: a delayed payment method is under way; held -> awaiting_payment with a longer hold.
-- The hold never gets shorter; asking again only pushes it further out.
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7] the reservation's record.
-- ARGV[2] reservation id, ARGV[3] new hold length from now (ms), ARGV[4] record retention (ms).
-- Reply: {'extended'|'not_held'|'already_committed', <record fields as in reserve>}
--      | {'not_found'} | {'bad_request', argument}
local record_key = KEYS[7]
local id = ARGV[2]
local hold_ms = whole(ARGV[3], MAX_MS)
local retention_ms = whole(ARGV[4], MAX_MS)
if not is_id(id) then return {'bad_request', 'id'} end
if not hold_ms or hold_ms < 1 or not retention_ms then return {'bad_request', 'hold'} end

local now = now_ms()
local r = current_record(id, record_key, now)
if not r then return {'not_found'} end
if r.status == 'committed' then return record_reply('already_committed', r) end
if not is_live(r) then return record_reply('not_held', r) end
local member = hold_member(id, r.items, r.customer)
local expires_at = math.max(r.expires_at, now + hold_ms)  -- the member's score
call('ZADD', holds_key, int(expires_at), member)
r.status = 'awaiting_payment'
set_expiry(r, expires_at)
write_record(record_key, r, expires_at - now + retention_ms)
return record_reply('extended', r)
