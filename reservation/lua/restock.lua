-- restock: a paid reservation was refunded and its units go back on sale (sold -> available).
-- Only a committed reservation restocks, once: it then reads as released.
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7] the reservation's record, KEYS[8] the fence.
-- ARGV[2] reservation id, ARGV[3] record retention (ms).
-- Reply: {'restocked'|'unchanged', <record fields as in reserve>} | {'fenced'} | {'not_found'}
--      | {'bad_request', argument}
local record_key = KEYS[7]
local retention_ms = whole(ARGV[3], MAX_MS)
if not is_id(ARGV[2]) then return {'bad_request', 'id'} end
if not retention_ms then return {'bad_request', 'retention'} end

local now = now_ms()
if fenced() then return {'fenced'} end
local r = decode_record(call('GET', record_key))
if not r then return {'not_found'} end
if r.status ~= 'committed' then return record_reply('unchanged', r) end

local items = parse_items(r.items)
local c = counters(skus_of(items))
local deltas, usage = {}, {}
for _, item in ipairs(items) do
  local sold = c[item[1]] and c[item[1]][3] or 0
  deltas[item[1] .. ':sold'] = -math.min(item[2], sold)
end
add_counts({}, usage, items, 'sold', r.customer, -1)
add_to_hash(stock_key, deltas, false)
add_to_hash(usage_key, usage, true)
hand_off(skus_of(items), now)  -- the line of a SKU gets the units first
-- Refunded is final: a late or repeated commit of this payment must never sell the units again.
r.status, r.late = 'released', FINAL
set_expiry(r, now)

write_record(record_key, r, retention_ms)
return record_reply('restocked', r)
