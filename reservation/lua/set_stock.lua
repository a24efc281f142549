-- set_stock: set a SKU's stock on hand (and its per-customer limit) in a pool.
-- Refused when the new total is below what is held plus sold.
-- KEYS: pool keys 1-3 (see _pool.lua).
-- ARGV[2] sku, ARGV[3] total, ARGV[4] per-customer limit (0: none; '': keep as is),
-- ARGV[5] the catalog entry to keep beside the counters (JSON; '': keep as is),
-- ARGV[6] '1': the SKU must have counters already (it has sold before: counters that Redis
-- lost are rebuilt from MongoDB, never started again from zero).
-- Reply: {'ok', total, reserved, sold, limit} | {'below_committed', reserved, sold} | {'missing'}
--      | {'bad_request', argument}
local sku = ARGV[2]
local total = whole(ARGV[3], MAX_UNITS)
local limit = whole(ARGV[4], MAX_UNITS)
if not is_name(sku) then return {'bad_request', 'sku'} end
if not total then return {'bad_request', 'total'} end
if not limit and ARGV[4] ~= '' then return {'bad_request', 'limit'} end

local c = current_counters({sku}, now_ms())[sku]
if not c then
  if ARGV[6] == '1' then return {'missing'} end
  c = {0, 0, 0, 0}
end
if total < c[2] + c[3] then return {'below_committed', c[2], c[3]} end
if limit == nil then limit = c[4] end
call('HSET', stock_key, sku .. ':total', total, sku .. ':reserved', c[2],
  sku .. ':sold', c[3], sku .. ':limit', limit)
if ARGV[5] and ARGV[5] ~= '' then call('HSET', stock_key, sku .. ':product', ARGV[5]) end
return {'ok', total, c[2], c[3], limit}
