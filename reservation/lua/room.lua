-- room: a SKU's waiting room as its operators see it (GET /v1/queue/{sku}, admin): read only.
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7..10] the room's line, tickets, live and
-- admissions (see queue.lua).
-- ARGV[2] sku.
-- Reply: {'ok', room (see parse_room), started ('1'/'0'), waiting, active, token, entry, token,
--        entry, ...} (every admission ever made, its entry as decode_admission reads it;
--        active: live tokens, by Redis TIME)
--      | {'unknown_sku'} | {'no_room'} | {'bad_request', argument}
-- Cost: TIME, HMGET, HGET, ZCARD, ZCOUNT, HGETALL of the admissions (one entry per admission).
local sku = ARGV[2]
if not is_name(sku) then return {'bad_request', 'sku'} end
if not KEYS[10] then return {'bad_request', 'keys'} end
local v = call('HMGET', stock_key, sku .. ':total', sku .. ':room')
if not v[1] then return {'unknown_sku'} end
if not (v[2] and parse_room(v[2])) then return {'no_room'} end
local now = now_ms()
local reply = {'ok', v[2], call('HGET', KEYS[8], ':started') == '1' and '1' or '0',
  call('ZCARD', KEYS[7]), call('ZCOUNT', KEYS[9], '(' .. int(now), '+inf')}
for _, item in ipairs(call('HGETALL', KEYS[10])) do reply[#reply + 1] = item end
return reply
