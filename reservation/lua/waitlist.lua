-- waitlist: a buyer joins a sold-out SKU's waiting list, reads their place, or leaves; an
-- operator removes a buyer, closes or opens the list. Units that come back are offered to the
-- line by the script that gives them back (hand_off in _pool.lua), never here, except that a
-- head leaving lets the next one take the units kept for it.
-- KEYS: pool keys 1-6 (see _pool.lua: `waitlist`, `line` and `outbox` are KEYS[4..6]).
-- ARGV[2] 'join' | 'read' | 'leave' | 'close' | 'open', ARGV[3] sku, ARGV[4] customer id
-- (join, read, leave), ARGV[5] quantity (join), ARGV[6] an offer's hold (ms) and ARGV[7] its
-- record's retention after it (ms) (join: kept for every offer of the pool), ARGV[8] the id
-- the entry's offer will have (join: "<pool>.wl-<22 characters>", the service's random token).
-- Reply: {outcome ('new' | 'again' | 'found' | 'left' | 'unchanged'), status, position (0
--        unless waiting), quantity, offer id ('' before an offer), offer expires (ms, ''),
--        joined (ms)}
--      | {'closed', entries that left} (close) | {'opened'} (open)
--      | {'unknown_sku'} | {'not_in_line'} | {'on_sale', available} | {'list_closed'}
--      | {'not_on_sale', sku, starts_ms, ends_ms} ('' for an open side)
--      | {'customer_limit', limit, already} | {'bad_request', argument}
-- Join: the same customer joins once (while waiting or offered: 'again', the same place); a
-- SKU outside its sale window answers not_on_sale; one with units the public may hold, on_sale; the quantity with what the customer holds
-- or bought of the SKU stays within its per-customer limit.
local mode, sku, customer = ARGV[2], ARGV[3], ARGV[4] or ''
local MODES = {join = true, read = true, leave = true, close = true, open = true}
if not MODES[mode] then return {'bad_request', 'mode'} end
if not is_name(sku) then return {'bad_request', 'sku'} end
local by_customer = mode == 'join' or mode == 'read' or mode == 'leave'
if by_customer and (not is_text(customer) or customer == '') then
  return {'bad_request', 'customer'}
end

local now = now_ms()
local fields = {sku .. ':total', sku .. ':reserved', sku .. ':sold', sku .. ':limit',
  sku .. ':waiting', sku .. ':sale', NEXT}
local v = call('HMGET', stock_key, unpack(fields))
if reclaim(now, tonumber(v[7])) > 0 then v = call('HMGET', stock_key, unpack(fields)) end
if not v[1] then return {'unknown_sku'} end

if mode == 'close' then
  call('HSET', waitlist_key, sku .. ':closed', '1')
  local members = call('ZRANGE', line_key, line_first(sku), line_last(sku), 'BYLEX')
  for _, member in ipairs(members) do
    local who = match(member, '^[^|]*|[^|]*|(.*)$')
    local w = decode_waiter(call('HGET', waitlist_key, sku .. '|' .. who))
    if w and w.status == 'waiting' then
      w.status = 'left'
      call('HSET', waitlist_key, sku .. '|' .. who, encode_waiter(w))
    end
  end
  call('ZREMRANGEBYLEX', line_key, line_first(sku), line_last(sku))
  call('HDEL', stock_key, sku .. ':waiting')
  return {'closed', #members}
end
if mode == 'open' then
  call('HDEL', waitlist_key, sku .. ':closed')
  return {'opened'}
end

local field = sku .. '|' .. customer
local w = decode_waiter(call('HGET', waitlist_key, field))
local function reply(outcome)
  local position = w.status == 'waiting' and line_position(sku, w, customer) or 0
  return {outcome, w.status, position, w.quantity, w.offer, w.expires, tonumber(w.joined) or 0}
end

if mode == 'read' then
  if not w then return {'not_in_line'} end
  return reply('found')
end
if mode == 'leave' then
  if not w then return {'not_in_line'} end
  if w.status ~= 'waiting' then return reply('unchanged') end
  call('ZREM', line_key, line_member(sku, w, customer))
  count_waiting(sku, -1)
  w.status = 'left'
  call('HSET', waitlist_key, field, encode_waiter(w))
  hand_off({sku}, now)  -- the units kept for a head that left go to the next
  return reply('left')
end

-- join
local quantity = whole(ARGV[5], MAX_UNITS)
local offer_ms, retention_ms = whole(ARGV[6], MAX_MS), whole(ARGV[7], MAX_MS)
local offer = ARGV[8]
if not quantity or quantity < 1 then return {'bad_request', 'quantity'} end
if not offer_ms or offer_ms < 1 or not retention_ms then return {'bad_request', 'offer'} end
if not is_text(offer) or not is_offer_id(offer) or find(offer, '|', 1, true) then
  return {'bad_request', 'offer_id'}
end
if w and (w.status == 'waiting' or w.status == 'offered') then return reply('again') end
if call('HGET', waitlist_key, sku .. ':closed') then return {'list_closed'} end
-- A list waits for units of a sale that is on: not before its start, nor after its end.
local sale = v[6] and parse_sale(v[6])
if not on_sale(sale, now) then
  return {'not_on_sale', sku, sale[1] and int(sale[1]) or '', sale[2] and int(sale[2]) or ''}
end
local total, reserved, sold = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
local limit, waiting = tonumber(v[4]) or 0, tonumber(v[5]) or 0
if waiting == 0 and total - reserved - sold > 0 then
  return {'on_sale', total - reserved - sold}
end
if limit > 0 then
  local already = tonumber(call('HGET', usage_key, field)) or 0
  if already + quantity > limit then return {'customer_limit', limit, already} end
end
local seq = call('HINCRBY', waitlist_key, sku .. ':seq', 1)
w = {status = 'waiting', seq = format('%012d', seq), quantity = quantity,
     quantity_text = int(quantity), joined = int(now), offer = offer, expires = ''}
call('HSET', waitlist_key, field, encode_waiter(w), ':offer_ms', offer_ms,
  ':retention_ms', retention_ms)
call('ZADD', line_key, 0, line_member(sku, w, customer))
count_waiting(sku, 1)
return reply('new')
