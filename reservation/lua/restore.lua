-- restore: rebuild one SKU's counters from the durable record (reconcile).
-- `total` and `sold` come from MongoDB; `reserved` is recounted from the pool's live holds.
-- KEYS: pool keys 1-6 (see _pool.lua).
-- ARGV[2] sku, ARGV[3] total, ARGV[4] sold, ARGV[5] per-customer limit (0: none),
-- ARGV[6] the catalog entry to keep beside the counters (JSON; '': keep as is),
-- ARGV[7] the sale window (see parse_sale; '': none), ARGV[8] the waiting room (see
-- parse_room; '': none), both written with the entry.
-- Reply: {total, reserved, sold, limit before (total -1 when the SKU was missing),
--         total, reserved, sold, limit after, on_sale after ('1'/'0', by TIME)}
--      | {'bad_request', argument}
local sku = ARGV[2]
local total, sold = whole(ARGV[3], MAX_UNITS), whole(ARGV[4], MAX_UNITS)
local limit = whole(ARGV[5], MAX_UNITS)
if not is_name(sku) then return {'bad_request', 'sku'} end
if not total or not sold or not limit then return {'bad_request', 'counters'} end
local entry, sale_text, room_text = ARGV[6] or '', ARGV[7] or '', ARGV[8] or ''
if not is_text(entry) then return {'bad_request', 'entry'} end
if sale_text ~= '' and not parse_sale(sale_text) then return {'bad_request', 'sale'} end
if room_text ~= '' and not parse_room(room_text) then return {'bad_request', 'room'} end

local now = now_ms()
reclaim(now)
local before = counters({sku})[sku] or {-1, 0, 0, 0}
local reserved = 0
for _, member in ipairs(call('ZRANGE', holds_key, 0, -1)) do
  local items = string.match(member, '^[^|]*|([^|]*)|')
  for _, item in ipairs(parse_items(items or '') or {}) do
    if item[1] == sku then reserved = reserved + item[2] end
  end
end
call('HSET', stock_key, sku .. ':total', total, sku .. ':reserved', reserved,
  sku .. ':sold', sold, sku .. ':limit', limit)
local open = keep_entry(sku, entry, sale_text, room_text, now)
hand_off({sku}, now)  -- units the recount freed go to the SKU's line first
reserved = counters({sku})[sku][2]
return {before[1], before[2], before[3], before[4], total, reserved, sold, limit,
  open and '1' or '0'}
