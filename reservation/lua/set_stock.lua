-- set_stock: set a SKU's stock on hand (and its per-customer limit) in a pool.
-- Refused when the new total is below what is held plus sold.
-- KEYS: pool keys 1-6 (see _pool.lua).
-- ARGV[2] sku, ARGV[3] total, ARGV[4] per-customer limit (0: none; '': keep as is),
-- ARGV[5] the catalog entry to keep beside the counters (JSON; '': keep as is),
-- ARGV[6] '1': the SKU must have counters already (it has sold before: counters that Redis
-- lost are rebuilt from MongoDB, never started again from zero),
-- ARGV[7] the sale window (see parse_sale; '': none), ARGV[8] the waiting room (see parse_room;
-- '': none), both written with the entry (kept as they are with it).
-- Reply: {'ok', total, reserved, sold, limit, on_sale ('1'/'0', by TIME)} | {'below_committed', reserved, sold} | {'missing'}
--      | {'bad_request', argument}
local sku = ARGV[2]
local total = whole(ARGV[3], MAX_UNITS)
local limit = whole(ARGV[4], MAX_UNITS)
if not is_name(sku) then return {'bad_request', 'sku'} end
if not total then return {'bad_request', 'total'} end
if not limit and ARGV[4] ~= '' then return {'bad_request', 'limit'} end
local entry, sale_text, room_text = ARGV[5] or '', ARGV[7] or '', ARGV[8] or ''
if not is_text(entry) then return {'bad_request', 'entry'} end
if sale_text ~= '' and not parse_sale(sale_text) then return {'bad_request', 'sale'} end
if room_text ~= '' and not parse_room(room_text) then return {'bad_request', 'room'} end

local now = now_ms()
local c = current_counters({sku}, now)[sku]
if not c then
  if ARGV[6] == '1' then return {'missing'} end
  c = {0, 0, 0, 0}
end
if total < c[2] + c[3] then return {'below_committed', c[2], c[3]} end
if limit == nil then limit = c[4] end
call('HSET', stock_key, sku .. ':total', total, sku .. ':reserved', c[2],
  sku .. ':sold', c[3], sku .. ':limit', limit)
local open = keep_entry(sku, entry, sale_text, room_text, now)
-- More stock goes to the SKU's line first (its offers are holds: `reserved` grows).
hand_off({sku}, now)
c = counters({sku})[sku]
return {'ok', total, c[2], c[3], limit, open and '1' or '0'}
