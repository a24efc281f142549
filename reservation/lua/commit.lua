-- commit: payment confirmed. A live hold's units move from reserved to sold. A hold that is
-- gone (expired, released, or its record lost) takes the late-payment path: the units are
-- taken from available if every line has them (committed late), otherwise nothing changes
-- and the reply says oversold so the caller refunds; the record remembers that (status
-- released, late = FINAL), and every later commit of it answers oversold again.
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7] the reservation's record, KEYS[8] the fence.
-- ARGV[2] reservation id, ARGV[3] record retention (ms),
-- ARGV[4] cart "sku=qty,..." to use when the record is gone ('' for none), ARGV[5] its customer.
-- Reply: {'committed'|'committed_late'|'already_committed', <record fields as in reserve>}
--      | {'oversold', sku, requested, available} | {'unknown_stock', sku} | {'fenced'}
--      | {'not_found'} | {'bad_request', argument}
local record_key = KEYS[7]
local id = ARGV[2]
local retention_ms = whole(ARGV[3], MAX_MS)
if not is_id(id) then return {'bad_request', 'id'} end
if not retention_ms then return {'bad_request', 'retention'} end
if ARGV[4] ~= '' and not parse_items(ARGV[4]) then return {'bad_request', 'cart'} end
if not is_text(ARGV[5]) then return {'bad_request', 'customer'} end

local now = now_ms()
if fenced() then return {'fenced'} end

local r = decode_record(call('GET', record_key))
if r then
  settle(id, record_key, r, now)
  if r.status == 'committed' then return record_reply('already_committed', r) end
  if is_live(r) then
    drop_hold(id, r, false, true, now, 'bought')
    r.status = 'committed'
    write_record(record_key, r, retention_ms)
    return record_reply('committed', r)
  end
else
  if not parse_items(ARGV[4]) then return {'not_found'} end
  r = new_record('expired', now, encode_items(parse_items(ARGV[4])), ARGV[5])
  set_expiry(r, now)
end

-- Late payment: all lines or none. Refusing is final: the caller refunds, so a later retry of
-- the same payment must not take units that became free meanwhile.
local items = parse_items(r.items)
local c = current_counters(skus_of(items), now)
local function available(sku)
  local s = c[sku]
  return s and math.max(s[1] - s[2] - s[3], 0) or 0
end
if r.late == FINAL then
  return {'oversold', items[1][1], items[1][2], available(items[1][1])}
end
-- A SKU with no counters at all means Redis lost the pool (a restart before `reconcile`):
-- that says nothing about stock, so decide nothing; the caller retries after reconcile.
for _, item in ipairs(items) do
  if not c[item[1]] then return {'unknown_stock', item[1]} end
end
for _, item in ipairs(items) do
  if item[2] > available(item[1]) then
    r.status, r.late = 'released', FINAL
    write_record(record_key, r, retention_ms)
    return {'oversold', item[1], item[2], available(item[1])}
  end
end
local deltas, usage = {}, {}
add_counts(deltas, usage, items, 'sold', r.customer, 1)
add_to_hash(stock_key, deltas, false)
add_to_hash(usage_key, usage, true)
r.status, r.late = 'committed', '1'
write_record(record_key, r, retention_ms)
return record_reply('committed_late', r)
