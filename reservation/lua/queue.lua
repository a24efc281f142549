-- queue: join a SKU's waiting room, or poll a ticket of it. Either moves the room on first,
-- lazily (no ticker): the fair start, expired admissions, the token bucket, one admission.
-- KEYS: pool keys 1-6 (see _pool.lua), then the room's (all under the pool's hash tag):
-- KEYS[7] line        zset  ticket -> its place: arrival order (1, 2, ...), the tickets that
--                           joined before the sale's start shuffled once at the start
-- KEYS[8] tickets     hash  ticket -> "<joined ms>|<status: waiting|admitted>|<token>|<customer>",
--                           "@<customer>" -> their ticket, ":seq" -> arrivals so far,
--                           ":bucket" -> "<level>|<ms>" (level in thousandths of an admission),
--                           ":started" -> '1' once the fair start's shuffle is done
-- KEYS[9] live        zset  admission token -> its expiry (ms): admitted, not used, not expired
-- KEYS[10] admissions  hash  admission token -> its entry (see decode_admission): the log
-- ARGV[2] 'join' | 'poll', ARGV[3] sku, ARGV[4] join: the id of the ticket to make (if the
-- customer has none); poll: the ticket asked about, ARGV[5] customer id ('' anonymous: every
-- join is a new ticket), ARGV[6] the random part of the token an admission by this call gets,
-- ARGV[7] and ARGV[8] the shuffle's seeds (1 to 2147483562 and 1 to 2147483398), ARGV[9] how
-- long the room's keys live after a write (ms).
-- Reply: {outcome ('new' | 'again' | 'found'), ticket, status ('waiting' | 'admitted' |
--        'sold_out' | 'expired'), position, estimated_wait_seconds, poll_after_ms, token,
--        token_expires_ms} (token and its expiry '' unless admitted)
--      | {'unknown_sku'} | {'no_room'} | {'no_ticket'} | {'bad_request', argument}
-- A customer's join answers their ticket, unless its admission lapsed unused: then a new one.
-- Rules: the fair start is the first call at or after the sale's start (any call, with no
-- start): the line, every ticket that joined before it, is shuffled (Fisher-Yates, by a
-- combined LCG seeded from ARGV: Redis' math.random is not ours to seed), once. After it, an
-- admission is made while the SKU is on sale with units available: the bucket refills at
-- admit_per_second up to one admission, and the line's head is admitted when it holds one and
-- fewer than max_active tokens are live (lapsed ones leave `live` first). So any window of W
-- seconds sees at most admit_per_second * W + 1 admissions, and one call makes at most one.
-- A waiting ticket answers sold_out while the SKU has nothing available, or its sale ended
-- (the line moves again when units come back). poll_after_ms = clamp(ms to the start +
-- 1000 * position / (2 * admit_per_second), 1000, min(60000, admission ms / 2));
-- estimated_wait_seconds = seconds to
-- the start + ceil(position / admit_per_second).
-- Cost: TIME, HMGET of the stock (and reclaim when due), HMGET of the room's state, ZRANK for
-- a waiting ticket or HGET of its admission; a join adds HINCRBY, ZADD, HSET; an admission
-- ZREMRANGEBYSCORE, ZCARD, ZPOPMIN, HSET x3, ZADD; a write PEXPIRE x4. The shuffle: ZRANGE
-- and ZADD of the whole line, once.
local mode, sku, ticket, customer = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local token_part = ARGV[6]
local SEED1, SEED2 = 2147483563, 2147483399
local seed1, seed2 = whole(ARGV[7], SEED1 - 1), whole(ARGV[8], SEED2 - 1)
local idle_ms = whole(ARGV[9], MAX_MS)
if mode ~= 'join' and mode ~= 'poll' then return {'bad_request', 'mode'} end
if not is_name(sku) then return {'bad_request', 'sku'} end
if not is_name(ticket) then return {'bad_request', 'ticket'} end
if not is_text(customer) then return {'bad_request', 'customer'} end
if not is_name(token_part) then return {'bad_request', 'token'} end
if not seed1 or seed1 < 1 or not seed2 or seed2 < 1 then return {'bad_request', 'seed'} end
if not idle_ms or idle_ms < 1 then return {'bad_request', 'idle'} end
local line_key, tickets_key, live_key, admissions_key = KEYS[7], KEYS[8], KEYS[9], KEYS[10]
if not admissions_key then return {'bad_request', 'keys'} end

local now = now_ms()
local fields = {sku .. ':total', sku .. ':reserved', sku .. ':sold', sku .. ':sale',
  sku .. ':room', NEXT}
local v = call('HMGET', stock_key, unpack(fields))
if reclaim(now, tonumber(v[6])) > 0 then v = call('HMGET', stock_key, unpack(fields)) end
if not v[1] then return {'unknown_sku'} end
local room = v[5] and parse_room(v[5])
if not room then return {'no_room'} end
local rate, most, admission_ms = room[1], room[2], room[3]
local sale = v[4] and parse_sale(v[4])
local starts = sale and sale[1]
local available = tonumber(v[1]) - (tonumber(v[2]) or 0) - (tonumber(v[3]) or 0)
local sold_out = available <= 0 or (sale and sale[2] and now >= sale[2]) or false

local state_fields = {':seq', ':bucket', ':started', ticket}
if mode == 'join' and customer ~= '' then state_fields[5] = '@' .. customer end
local state = call('HMGET', tickets_key, unpack(state_fields))
local record = state[4]
local outcome, wrote = 'found', false

-- The fair start: every ticket in the line joined before it.
local started = state[3] == '1'
if not started and (not starts or now >= starts) then
  local members = call('ZRANGE', line_key, 0, -1)
  for i = #members, 2, -1 do
    seed1, seed2 = (40014 * seed1) % SEED1, (40692 * seed2) % SEED2
    local z = seed1 - seed2
    if z < 1 then z = z + SEED1 - 1 end
    local j = floor(z / SEED1 * i) + 1
    members[i], members[j] = members[j], members[i]
  end
  local places = {}
  for i, member in ipairs(members) do
    places[#places + 1], places[#places + 2] = i, member
  end
  if #places > 0 then call_chunked('ZADD', line_key, places) end
  call('HSET', tickets_key, ':started', '1')
  started, wrote = true, true
end

-- Whether a ticket's record is an admission that lapsed unused: its buyer may join again, at
-- the end of the line, with a new ticket (the old one keeps answering `expired`).
local function lapsed(raw)
  local status, token = match(raw, '^[^|]*|([^|]*)|([^|]*)|')
  if status ~= 'admitted' then return false end
  local a = decode_admission(call('HGET', admissions_key, token) or '')
  return a ~= nil and a.used == '' and a.expires <= now
end

if mode == 'join' then
  local mine = state[5] and call('HGET', tickets_key, state[5])
  if mine and not lapsed(mine) then
    ticket, outcome, record = state[5], 'again', mine
  elseif record then
    outcome = 'again'  -- this very join, sent again (a retried command)
  else
    local seq = call('HINCRBY', tickets_key, ':seq', 1)
    call('ZADD', line_key, seq, ticket)
    record = int(now) .. '|waiting||' .. customer
    local set = {ticket, record}
    if customer ~= '' then set[3], set[4] = '@' .. customer, ticket end
    call('HSET', tickets_key, unpack(set))
    outcome, wrote = 'new', true
  end
end
if not record then return {'no_ticket'} end

-- One admission, from the head of the line, when the bucket and max_active allow.
local ONE = 1000
if started and not sold_out and on_sale(sale, now) then
  local level, last = match(state[2] or '', '^(%d+)|(%d+)$')
  level = min(ONE, (tonumber(level) or ONE) + max(0, now - (tonumber(last) or now)) * rate)
  call('ZREMRANGEBYSCORE', live_key, '-inf', now)
  if level >= ONE and call('ZCARD', live_key) < most then
    local head = call('ZPOPMIN', line_key)[1]
    if head then
      local raw = call('HGET', tickets_key, head) or ''
      local joined, who = match(raw, '^([^|]*)|[^|]*|[^|]*|(.*)$')
      local token, expires = sku .. '.' .. token_part, int(now + admission_ms)
      local admitted = (joined or int(now)) .. '|admitted|' .. token .. '|' .. (who or '')
      call('HSET', tickets_key, head, admitted, ':bucket', int(level - ONE) .. '|' .. int(now))
      call('HSET', admissions_key, token, encode_admission({ticket = head, admitted = int(now),
        expires_text = expires, used = '', reservation = '', customer = who or ''}))
      call('ZADD', live_key, expires, token)
      if head == ticket then record = admitted end
      wrote = true
    end
  end
end

if wrote then
  for i = 7, 10 do call('PEXPIRE', KEYS[i], idle_ms) end
end

-- The ticket's answer.
local status, token = match(record, '^[^|]*|([^|]*)|([^|]*)|')
if status == 'admitted' then
  local a = decode_admission(call('HGET', admissions_key, token) or '')
  if a and (a.used ~= '' or a.expires > now) then
    return {outcome, ticket, 'admitted', 0, 0, 60000, token, a.expires_text}
  end
  return {outcome, ticket, 'expired', 0, 0, 60000, '', ''}
end
local position = (call('ZRANK', line_key, ticket) or 0) + 1
local to_start = (starts and now < starts) and starts - now or 0
-- At most half an admission apart: a ticket admitted between two polls learns of it with at
-- least half its time left.
local most_apart = max(1000, min(60000, floor(admission_ms / 2)))
local poll_after = min(most_apart, max(1000, floor(to_start + 1000 * position / (2 * rate))))
local wait = math.ceil(to_start / 1000) + math.ceil(position / rate)
return {outcome, ticket, sold_out and 'sold_out' or 'waiting', position, wait, poll_after, '', ''}
