-- reserve: hold every line of a cart, or nothing.
-- KEYS: pool keys 1-4 (see _pool.lua), KEYS[5] the new reservation's record.
-- ARGV[2] reservation id, ARGV[3] hold length (ms), ARGV[4] record retention after the hold (ms),
-- ARGV[5] customer id ('' for none), ARGV[6] cart "sku=qty,..." (a SKU twice is summed).
-- Reply: {'held'|'existing', status, items, customer, expires_at_ms, created_at_ms, late}
--      | {'unknown_sku', sku} | {'insufficient', sku, requested, available}
--      | {'customer_limit', sku, limit, already} | {'bad_request', reason}
local record_key = KEYS[5]
local id = ARGV[2]
local hold_ms = tonumber(ARGV[3])
local retention_ms = tonumber(ARGV[4])
local customer = ARGV[5]
local items = parse_items(ARGV[6])

local now = now_ms()
reclaim(now)

-- A retry of a reservation that exists answers what it is now, and holds nothing more.
if redis.call('EXISTS', record_key) == 1 then
  settle(id, record_key, now)
  return record_reply('existing', record_key)
end
if not items then return {'bad_request', 'cart'} end
if not hold_ms or hold_ms < 1 or not retention_ms or retention_ms < 0 then
  return {'bad_request', 'hold'}
end

-- Check everything before writing anything.
for _, item in ipairs(items) do
  local sku, qty = item[1], item[2]
  local c = counters(sku)
  if not c then return {'unknown_sku', sku} end
  local available = c[1] - c[2] - c[3]
  if qty > available then return {'insufficient', sku, qty, math.max(available, 0)} end
  if customer ~= '' and c[4] > 0 then
    local already = tonumber(redis.call('HGET', usage_key, sku .. '|' .. customer)) or 0
    if already + qty > c[4] then return {'customer_limit', sku, c[4], already} end
  end
end

local expires_at = now + hold_ms
local encoded = encode_items(items)
for _, item in ipairs(items) do
  redis.call('HINCRBY', stock_key, item[1] .. ':reserved', item[2])
  add_usage(customer, item[1], item[2])
end
redis.call('ZADD', holds_key, expires_at, id)
redis.call('HSET', holding_key, id, customer .. '\n' .. encoded)
redis.call('HSET', record_key, 'status', 'held', 'items', encoded, 'customer', customer,
  'expires_at', expires_at, 'created_at', now)
redis.call('PEXPIRE', record_key, hold_ms + retention_ms)
return {'held', 'held', encoded, customer, expires_at, now, '0'}
