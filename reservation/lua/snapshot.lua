-- snapshot: counters and catalog entry of some SKUs of a pool, or of all of them, after
-- reclaiming lapsed holds.
-- KEYS: pool keys 1-6 (see _pool.lua).
-- ARGV[2..] SKUs (none: every SKU of the pool).
-- Reply: flat {sku, total, reserved, sold, limit, product, sale, room, on_sale, waiting, ...}
--   (waiting: the entries in the SKU's waiting list's line, 0 for none)
--      | {'bad_request', argument};
-- total is -1 for a SKU not in
-- the pool (any text that is not a stocked SKU reads so); product is the catalog entry PUT
-- stored beside the counters (JSON), or false; sale its sale window text and room its waiting
-- room text (false: none);
-- on_sale '1'/'0' by Redis TIME. Thousands of SKUs are read in chunks.
local now = now_ms()
reclaim_due(now)
local skus = {}
if #ARGV > 1 then
  for i = 2, #ARGV do skus[#skus + 1] = ARGV[i] end
else
  for _, field in ipairs(call('HKEYS', stock_key)) do
    local sku = string.match(field, '^(.*):total$')
    if sku then skus[#skus + 1] = sku end
  end
  table.sort(skus)
end
local reply = {}
if #skus == 0 then return reply end
local c = counters(skus)
local products, sales, rooms = {}, {}, {}
local waiting = {}
local step = CHUNK / 4
for first = 1, #skus, step do
  local fields = {}
  for i = first, math.min(first + step - 1, #skus) do
    fields[#fields + 1] = skus[i] .. ':product'
    fields[#fields + 1] = skus[i] .. ':sale'
    fields[#fields + 1] = skus[i] .. ':room'
    fields[#fields + 1] = skus[i] .. ':waiting'
  end
  local values = call('HMGET', stock_key, unpack(fields))
  for i = 1, #fields / 4 do
    products[first + i - 1] = values[4 * i - 3]
    sales[first + i - 1] = values[4 * i - 2]
    rooms[first + i - 1] = values[4 * i - 1]
    waiting[first + i - 1] = tonumber(values[4 * i]) or 0
  end
end
for i, sku in ipairs(skus) do
  local s = c[sku] or {-1, 0, 0, 0}
  reply[#reply + 1] = sku
  for j = 1, 4 do reply[#reply + 1] = s[j] end
  reply[#reply + 1] = products[i]
  reply[#reply + 1] = sales[i]
  reply[#reply + 1] = rooms[i]
  reply[#reply + 1] = on_sale(sales[i] and parse_sale(sales[i]) or nil, now) and '1' or '0'
  reply[#reply + 1] = waiting[i]
end
return reply
