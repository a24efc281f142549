-- restore: rebuild one SKU's counters from the durable record (reconcile).
-- `total` and `sold` come from MongoDB; `reserved` is recounted from the pool's live holds.
-- KEYS: pool keys 1-6 (see _pool.lua).
-- ARGV[2] sku, ARGV[3] total, ARGV[4] sold, ARGV[5] per-customer limit (0: none),
-- ARGV[6] the catalog entry to keep beside the counters (JSON; '': keep as is),
-- ARGV[7] the sale window (see parse_sale; '': none), ARGV[8] the waiting room (see
-- parse_room; '': none), both written with the entry; ARGV[9] an offer's hold (ms) and ARGV[10]
-- its record's retention (ms), kept for the pool's offers as a join keeps them ('': as they
-- are); ARGV[11..] the SKU's waiting list as
-- MongoDB keeps it, in join order: "<quantity>|<joined ms>|<offer id>|<customer>" each, put
-- back in line unless the customer has an entry for the SKU already (Redis kept it), before
-- the units are offered on: a Redis that lost the line gets it back in the same call that
-- gives the counters back, so no unit a buyer waits for is sold to the public meanwhile.
-- Reply: {total, reserved, sold, limit before (total -1 when the SKU was missing),
--         total, reserved, sold, limit after, on_sale after ('1'/'0', by TIME)}
--      | {'bad_request', argument}
local sku = ARGV[2]
local total, sold = whole(ARGV[3], MAX_UNITS), whole(ARGV[4], MAX_UNITS)
local limit = whole(ARGV[5], MAX_UNITS)
if not is_name(sku) then return {'bad_request', 'sku'} end
if not total or not sold or not limit then return {'bad_request', 'counters'} end
local entry, sale_text, room_text = ARGV[6] or '', ARGV[7] or '', ARGV[8] or ''
if not is_text(entry) then return {'bad_request', 'entry'} end
if sale_text ~= '' and not parse_sale(sale_text) then return {'bad_request', 'sale'} end
if room_text ~= '' and not parse_room(room_text) then return {'bad_request', 'room'} end

local offer_ms, retention_ms = ARGV[9] or '', ARGV[10] or ''
if offer_ms ~= '' and (not whole(offer_ms, MAX_MS) or tonumber(offer_ms) < 1) then
  return {'bad_request', 'offer'}
end
if retention_ms ~= '' and not whole(retention_ms, MAX_MS) then return {'bad_request', 'offer'} end
local joins = {}
for i = 11, #ARGV do
  local qty, joined, offer, who = match(ARGV[i], '^(%d+)|(%d+)|([^|]*)|(.+)$')
  if not qty or not whole(qty, MAX_UNITS) or tonumber(qty) < 1 or not whole(joined, MAX_MS)
    or not is_offer_id(offer) then
    return {'bad_request', 'waitlist'}
  end
  joins[#joins + 1] = {qty, joined, offer, who}
end

local now = now_ms()
reclaim(now)
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
local open = keep_entry(sku, entry, sale_text, room_text, now)
if offer_ms ~= '' then call('HSET', waitlist_key, ':offer_ms', offer_ms) end
if retention_ms ~= '' then call('HSET', waitlist_key, ':retention_ms', retention_ms) end
for _, join in ipairs(joins) do
  local field = sku .. '|' .. join[4]
  if not call('HGET', waitlist_key, field) then
    local w = {status = 'waiting', seq = format('%012d', call('HINCRBY', waitlist_key,
      sku .. ':seq', 1)), quantity = tonumber(join[1]), quantity_text = join[1],
      joined = join[2], offer = join[3], expires = ''}
    call('HSET', waitlist_key, field, encode_waiter(w))
    call('ZADD', line_key, 0, line_member(sku, w, join[4]))
    count_waiting(sku, 1)
  end
end
hand_off({sku}, now)  -- units the recount freed go to the SKU's line first
reserved = counters({sku})[sku][2]
return {before[1], before[2], before[3], before[4], total, reserved, sold, limit,
  open and '1' or '0'}
