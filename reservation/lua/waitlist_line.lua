-- waitlist_line: a SKU's waiting list for its operators (read only, but lapsed holds are given
-- back first, and so offered on).
-- KEYS: pool keys 1-6 (see _pool.lua).
-- ARGV[2] sku, ARGV[3] how many entries of the line to list from its head.
-- Reply: {'ok', closed ('1'/'0'), entries in line, live offers, then per listed entry:
--         customer, quantity, joined (ms)}
--      | {'unknown_sku'} | {'bad_request', argument}
local sku = ARGV[2]
local most = whole(ARGV[3], MAX_UNITS)
if not is_name(sku) then return {'bad_request', 'sku'} end
if not most then return {'bad_request', 'limit'} end
local now = now_ms()
reclaim_due(now)
if not call('HGET', stock_key, sku .. ':total') then return {'unknown_sku'} end
local state = call('HMGET', waitlist_key, sku .. ':closed', sku .. ':offers')
local reply = {'ok', state[1] and '1' or '0',
  call('ZLEXCOUNT', line_key, line_first(sku), line_last(sku)), tonumber(state[2]) or 0}
if most > 0 then
  local members = call('ZRANGE', line_key, line_first(sku), line_last(sku), 'BYLEX',
    'LIMIT', 0, most)
  for _, member in ipairs(members) do
    local who = match(member, '^[^|]*|[^|]*|(.*)$')
    local w = decode_waiter(call('HGET', waitlist_key, sku .. '|' .. who))
    reply[#reply + 1] = who
    reply[#reply + 1] = w and w.quantity_text or '0'
    reply[#reply + 1] = w and w.joined or '0'
  end
end
return reply
