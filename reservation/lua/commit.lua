-- commit: payment confirmed. A live hold's units move from reserved to sold. A hold that is
-- gone (expired, released, or its record lost) takes the late-payment path: the units are
-- taken from available if every line has them (committed late), otherwise nothing changes
-- and the reply says oversold so the caller refunds.
-- KEYS: pool keys 1-4 (see _pool.lua), KEYS[5] the reservation's record.
-- ARGV[2] reservation id, ARGV[3] record retention (ms),
-- ARGV[4] cart "sku=qty,..." to use when the record is gone ('' for none), ARGV[5] its customer.
-- Reply: {'committed'|'committed_late'|'already_committed', <record fields as in reserve>}
--      | {'oversold', sku, requested, available} | {'not_found'}
local record_key = KEYS[5]
local id = ARGV[2]
local retention_ms = tonumber(ARGV[3])

local now = now_ms()
reclaim(now)

local items, customer
if redis.call('EXISTS', record_key) == 1 then
  local status = settle(id, record_key, now)
  if status == 'committed' then return record_reply('already_committed', record_key) end
  local r = redis.call('HMGET', record_key, 'items', 'customer')
  items, customer = parse_items(r[1]), r[2] or ''
  if status == 'held' or status == 'awaiting_payment' then
    for _, item in ipairs(items) do
      redis.call('HINCRBY', stock_key, item[1] .. ':reserved', -item[2])
      redis.call('HINCRBY', stock_key, item[1] .. ':sold', item[2])
    end
    drop_hold(id, false)
    redis.call('HSET', record_key, 'status', 'committed', 'committed_at', now)
    redis.call('PEXPIRE', record_key, retention_ms)
    return record_reply('committed', record_key)
  end
else
  items, customer = parse_items(ARGV[4]), ARGV[5]
  if not items then return {'not_found'} end
end

-- Late payment: all lines or none.
for _, item in ipairs(items) do
  local c = counters(item[1])
  local available = c and (c[1] - c[2] - c[3]) or 0
  if item[2] > available then return {'oversold', item[1], item[2], math.max(available, 0)} end
end
for _, item in ipairs(items) do
  redis.call('HINCRBY', stock_key, item[1] .. ':sold', item[2])
  add_usage(customer, item[1], item[2])
end
redis.call('HSET', record_key, 'status', 'committed', 'items', encode_items(items),
  'customer', customer, 'committed_at', now, 'late', '1')
if redis.call('HEXISTS', record_key, 'created_at') == 0 then
  redis.call('HSET', record_key, 'created_at', now, 'expires_at', now)
end
redis.call('PEXPIRE', record_key, retention_ms)
return record_reply('committed_late', record_key)
