-- snapshot: counters and catalog entry of some SKUs of a pool, or of all of them, after
-- reclaiming lapsed holds.
-- KEYS: pool keys 1-3 (see _pool.lua).
-- ARGV[2..] SKUs (none: every SKU of the pool).
-- Reply: flat {sku, total, reserved, sold, limit, product, ...} | {'bad_request', argument};
-- total is -1 for a SKU not in
-- the pool (any text that is not a stocked SKU reads so); product is the catalog entry PUT
-- stored beside the counters (JSON), or false. Thousands of SKUs are read in chunks.
reclaim_due(now_ms())
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
local products = {}
for first = 1, #skus, CHUNK do
  local fields = {}
  for i = first, math.min(first + CHUNK - 1, #skus) do
    fields[#fields + 1] = skus[i] .. ':product'
  end
  for i, entry in ipairs(call('HMGET', stock_key, unpack(fields))) do
    products[first + i - 1] = entry
  end
end
for i, sku in ipairs(skus) do
  local s = c[sku] or {-1, 0, 0, 0}
  reply[#reply + 1] = sku
  for j = 1, 4 do reply[#reply + 1] = s[j] end
  reply[#reply + 1] = products[i]
end
return reply
