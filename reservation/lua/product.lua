-- product: one SKU's product view, as the JSON text GET /v1/products/{sku} answers, assembled
-- here from the counters and the catalog entry a PUT keeps beside them: a product read is one
-- call, and the service passes the text on without parsing it. `on_sale` is decided here, by
-- Redis TIME and the SKU's sale window (`<sku>:sale`, read by the same HMGET), as is its
-- waiting room (`<sku>:room`) and its waiting list's line (`<sku>:waiting`: while it has
-- anyone, `available` is 0).
-- KEYS: pool keys 1-6 (see _pool.lua).
-- ARGV[2] sku, ARGV[3] the pool's name.
-- Reply: the JSON text, or false when the SKU has no counters or no catalog entry here;
-- {'bad_request', argument} for a SKU or pool that is not a name.
local sku, pool = ARGV[2], ARGV[3]
-- Both are spliced into the JSON below: names only (no quote or backslash to escape).
if not is_name(sku) then return {'bad_request', 'sku'} end
if not is_name(pool) then return {'bad_request', 'pool'} end
local fields = {sku .. ':total', sku .. ':reserved', sku .. ':sold', sku .. ':limit',
  sku .. ':product', NEXT, sku .. ':sale', sku .. ':room', sku .. ':waiting'}
local v = call('HMGET', stock_key, unpack(fields))
local now = now_ms()
if reclaim(now, tonumber(v[6])) > 0 then v = call('HMGET', stock_key, unpack(fields)) end
if not v[1] or not v[5] then return false end
local total, reserved = tonumber(v[1]), tonumber(v[2]) or 0
local sold, limit = tonumber(v[3]) or 0, tonumber(v[4]) or 0
-- While someone waits in the SKU's line, nothing is available to the public.
local waiting = tonumber(v[9]) or 0
local available = waiting > 0 and 0 or math.max(total - reserved - sold, 0)
-- %d: integers up to 10^12 print whole (tostring would print 1e+12).
local function int(n) return string.format('%d', n) end
-- The window's times are spliced in as stored (parse_sale admits no quote or backslash).
local sale = v[7] and parse_sale(v[7])
local function time_json(at) return (sale and at ~= '') and '"' .. at .. '"' or 'null' end
local room = v[8] and parse_room(v[8])
local room_json = room and format('{"admit_per_second":%d,"max_active":%d,"admission_seconds":%d}',
  room[1], room[2], room[3] / 1000) or 'null'
-- The entry is a JSON object {"name", "price", "currency"}; its members are spliced in.
return table.concat({
  '{"sku":"', sku, '",', string.sub(v[5], 2, -2),
  ',"pool":"', pool, '","stock":', int(total), ',"reserved":', int(reserved),
  ',"sold":', int(sold), ',"available":', int(available),
  ',"max_per_customer":', limit > 0 and int(limit) or 'null',
  ',"sale_starts_at":', time_json(sale and sale[3]), ',"sale_ends_at":', time_json(sale and sale[4]),
  ',"on_sale":', on_sale(sale or nil, now) and 'true' or 'false',
  ',"waiting_room":', room_json, ',"waitlist":', int(waiting), '}'})
