-- reserve: hold every line of a cart, or nothing.
-- KEYS: pool keys 1-3 (see _pool.lua), KEYS[4] the reservation's record.
-- ARGV[2] reservation id, ARGV[3] hold length (ms), ARGV[4] record retention after the hold (ms),
-- ARGV[5] customer id ('' for none), ARGV[6] cart "sku=qty,..." (a SKU twice is summed),
-- ARGV[7] '1' when the id is freshly made (it cannot exist yet: a refusal skips that lookup),
-- ARGV[8] '1' to refuse a cart without a customer id that holds a SKU with a limit,
-- ARGV[9] the most live holds one customer id may have in this pool (0: no cap; to 10^12).
-- A SKU's limit bounds every reservation; with a customer id, also what that customer holds or
-- bought of it. The cap counts the customer's live holds (held or awaiting payment, not paid):
-- a hold that is released, lapses or is paid for frees its place.
-- Reply: {'held'|'existing', status, items, customer, expires_at_ms, created_at_ms, late}
--      | {'unknown_sku', sku} | {'insufficient', sku, requested, available}
--      | {'customer_limit', sku, limit, already} | {'customer_required', sku}
--      | {'hold_cap', cap, held} | {'bad_request', reason}
-- A sold-out answer costs TIME, ZRANGE and one HMGET (with a customer id and a limited SKU
-- or the cap on, one more of their usage); a hold adds SET, HSET and ZADD.
local record_key = KEYS[4]
local id = ARGV[2]
local hold_ms = whole(ARGV[3], MAX_MS)
local retention_ms = whole(ARGV[4], MAX_MS)
local customer = ARGV[5]
local items = parse_items(ARGV[6])
local fresh = ARGV[7] == '1'
local require_customer = ARGV[8] == '1'
local hold_cap = whole(ARGV[9], MAX_UNITS)

if not items then return {'bad_request', 'cart'} end
if not hold_ms or hold_ms < 1 or not retention_ms or retention_ms < 0 then
  return {'bad_request', 'hold'}
end
if not is_id(id) then return {'bad_request', 'id'} end
if not is_text(customer) then return {'bad_request', 'customer'} end
if not hold_cap then return {'bad_request', 'hold_cap'} end

local now = now_ms()
reclaim(now)

-- Check everything before writing anything.
local function refusal()
  local skus = skus_of(items)
  local c = counters(skus)
  local used = {}
  local capped = customer ~= '' and hold_cap > 0
  if customer ~= '' then
    local limited = {}
    for _, sku in ipairs(skus) do
      if c[sku] and c[sku][4] > 0 then limited[#limited + 1] = sku .. '|' .. customer end
    end
    if capped then limited[#limited + 1] = HOLDS .. customer end
    if #limited > 0 then
      local values = call('HMGET', usage_key, unpack(limited))
      for i, field in ipairs(limited) do used[field] = tonumber(values[i]) or 0 end
    end
  end
  for _, item in ipairs(items) do
    local sku, qty = item[1], item[2]
    local s = c[sku]
    if not s then return {'unknown_sku', sku} end
    local limit = s[4]
    if limit > 0 and customer == '' and require_customer then return {'customer_required', sku} end
    local available = s[1] - s[2] - s[3]
    if qty > available then return {'insufficient', sku, qty, math.max(available, 0)} end
    local already = used[sku .. '|' .. customer] or 0
    if limit > 0 and already + qty > limit then return {'customer_limit', sku, limit, already} end
  end
  local held = used[HOLDS .. customer] or 0
  if capped and held >= hold_cap then return {'hold_cap', hold_cap, held} end
  return nil
end

local function existing(raw)
  return record_reply('existing', settle(id, record_key, decode_record(raw), now))
end

local refused = refusal()
if refused then
  -- A retry of a reservation that exists answers what it is now, whatever the stock says.
  if not fresh then
    local raw = call('GET', record_key)
    if raw then return existing(raw) end
  end
  return refused
end

local record = {status = 'held', expires_at = now + hold_ms, created_at = now, late = '0',
                items = encode_items(items), customer = customer}
local previous = call('SET', record_key, encode_record(record),
  'PX', hold_ms + retention_ms, 'NX', 'GET')
if previous then return existing(previous) end

local deltas = {}
add_counts(deltas, nil, items, 'reserved', customer, 1)
add_to_hash(stock_key, deltas, false)
if customer ~= '' then
  local usage = {}
  add_counts({}, usage, items, 'reserved', customer, 1)
  count_hold(usage, customer, 1)
  add_to_hash(usage_key, usage, true)
end
call('ZADD', holds_key, record.expires_at, hold_member(id, record.items, customer))
return record_reply('held', record)
