-- Shared prelude of every pool script; reservation/scripts.py prepends it to each file.
--
-- KEYS[1] stock     hash  "<sku>:total|reserved|sold|limit" -> integer
-- KEYS[2] holds     zset  reservation id, scored by hold expiry (ms, Redis TIME)
-- KEYS[3] holding   hash  reservation id -> "<customer>\n<sku>=<qty>,<sku>=<qty>"
-- KEYS[4] usage     hash  "<sku>|<customer>" -> units held + bought by that customer
-- KEYS[5] record    hash  one reservation (scripts about one reservation only)
-- ARGV[1] reclaim batch: at most this many expired holds are given back per call.
--
-- Every key of a pool shares the pool's hash tag, so one script stays in one cluster slot.
-- A reservation's liveness is its score in `holds`; its record keeps the last status written,
-- and `settle` turns a lapsed held/awaiting_payment record into `expired` when it is touched.
local stock_key, holds_key, holding_key, usage_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local reclaim_batch = tonumber(ARGV[1])

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- "sku=qty,sku=qty" -> {{sku, qty}, ...}, same SKU summed, first-seen order kept.
local function parse_items(encoded)
  local items, index = {}, {}
  for sku, qty in string.gmatch(encoded, '([^,=]+)=([^,]+)') do
    local n = tonumber(qty)
    if n == nil or n < 1 or n ~= math.floor(n) then return nil end
    if index[sku] then
      items[index[sku]][2] = items[index[sku]][2] + n
    else
      items[#items + 1] = {sku, n}
      index[sku] = #items
    end
  end
  if #items == 0 then return nil end
  return items
end

local function encode_items(items)
  local parts = {}
  for i, item in ipairs(items) do parts[i] = item[1] .. '=' .. item[2] end
  return table.concat(parts, ',')
end

local function add_usage(customer, sku, delta)
  if customer == nil or customer == '' then return end
  local field = sku .. '|' .. customer
  if redis.call('HINCRBY', usage_key, field, delta) <= 0 then
    redis.call('HDEL', usage_key, field)
  end
end

-- Drop a hold's bookkeeping; with give_back, its units return to available.
local function drop_hold(id, give_back)
  redis.call('ZREM', holds_key, id)
  local data = redis.call('HGET', holding_key, id)
  if not data then return end
  redis.call('HDEL', holding_key, id)
  if not give_back then return end
  local customer, encoded = string.match(data, '^(.-)\n(.*)$')
  for _, item in ipairs(parse_items(encoded) or {}) do
    redis.call('HINCRBY', stock_key, item[1] .. ':reserved', -item[2])
    add_usage(customer, item[1], -item[2])
  end
end

local function reclaim(now)
  local expired = redis.call('ZRANGE', holds_key, '-inf', now, 'BYSCORE', 'LIMIT', 0, reclaim_batch)
  for _, id in ipairs(expired) do drop_hold(id, true) end
  return #expired
end

-- The record's status now: a held/awaiting_payment reservation whose hold lapsed is expired
-- (its units go back here if the batch reclaim has not reached it yet).
local function settle(id, record_key, now)
  local status = redis.call('HGET', record_key, 'status')
  if status == 'held' or status == 'awaiting_payment' then
    local expiry = redis.call('ZSCORE', holds_key, id)
    if not expiry or tonumber(expiry) <= now then
      drop_hold(id, true)
      status = 'expired'
      redis.call('HSET', record_key, 'status', status)
    end
  end
  return status
end

-- The reply shape of every script about one reservation.
local function record_reply(outcome, record_key)
  local r = redis.call('HMGET', record_key, 'status', 'items', 'customer', 'expires_at', 'created_at', 'late')
  return {outcome, r[1], r[2], r[3] or '', tonumber(r[4]), tonumber(r[5]), r[6] or '0'}
end

-- Per SKU: {total, reserved, sold, limit}; total is false when the SKU is not in this pool.
local function counters(sku)
  local c = redis.call('HMGET', stock_key, sku .. ':total', sku .. ':reserved', sku .. ':sold', sku .. ':limit')
  if not c[1] then return false end
  return {tonumber(c[1]), tonumber(c[2]) or 0, tonumber(c[3]) or 0, tonumber(c[4]) or 0}
end
