-- restore: rebuild one SKU's counters from the durable record (reconcile).
-- `total` and `sold` come from MongoDB; `reserved` is recounted from the pool's live holds.
-- KEYS: pool keys 1-3 (see _pool.lua).
-- ARGV[2] sku, ARGV[3] total, ARGV[4] sold, ARGV[5] per-customer limit (0: none),
-- ARGV[6] the catalog entry to keep beside the counters (JSON; '': keep as is).
-- Reply: {total, reserved, sold, limit before (total -1 when the SKU was missing),
--         total, reserved, sold, limit after} | {'bad_request', argument}
local sku = ARGV[2]
local total, sold = whole(ARGV[3], MAX_UNITS), whole(ARGV[4], MAX_UNITS)
local limit = whole(ARGV[5], MAX_UNITS)
if not is_name(sku) then return {'bad_request', 'sku'} end
if not total or not sold or not limit then return {'bad_request', 'counters'} end

reclaim(now_ms())
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
if ARGV[6] and ARGV[6] ~= '' then call('HSET', stock_key, sku .. ':product', ARGV[6]) end
return {before[1], before[2], before[3], before[4], total, reserved, sold, limit}
