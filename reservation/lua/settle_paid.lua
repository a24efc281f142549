-- settle_paid: reconcile's word that MongoDB holds a paid order for this reservation. The
-- record becomes committed, so a redelivered payment finds it committed and counts nothing
-- twice. Counters are not touched: `restore` sets them from MongoDB right after (a live hold
-- leaves `holds` here, so the recount of `reserved` no longer includes it).
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7] the reservation's record.
-- ARGV[2] reservation id, ARGV[3] record retention (ms), ARGV[4] the paid cart "sku=qty,...",
-- ARGV[5] its customer.
-- Reply: {'settled'|'unchanged'|'oversold'} | {'bad_request', argument}: 'oversold' when its
-- payment was refused for good (no units left; refunded), so the order sells nothing.
local record_key = KEYS[7]
local id = ARGV[2]
local retention_ms = whole(ARGV[3], MAX_MS)
if not is_id(id) then return {'bad_request', 'id'} end
if not retention_ms then return {'bad_request', 'retention'} end
if ARGV[4] ~= '' and not parse_items(ARGV[4]) then return {'bad_request', 'cart'} end
if not is_text(ARGV[5]) then return {'bad_request', 'customer'} end

local now = now_ms()
local r = decode_record(call('GET', record_key))
if r and r.status == 'committed' then return {'unchanged'} end
if r and r.late == FINAL then return {'oversold'} end
if r and is_live(r) then
  drop_hold(id, r, false, false, now, 'bought')
elseif not r then
  local items = parse_items(ARGV[4])
  if not items then return {'unchanged'} end
  r = new_record('committed', now, encode_items(items), ARGV[5])
  set_expiry(r, now)
end
r.status, r.late = 'committed', r.late == '1' and '1' or '0'
write_record(record_key, r, retention_ms)
return {'settled'}
