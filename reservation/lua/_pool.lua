-- The library's shared part: reservation/lua/library.py builds one Redis Functions library from
-- this file and every script's file. Everything here is defined once, when the library loads
-- (FUNCTION LOAD), not on every call; each function sets the call's KEYS and ARGV first.
--
-- KEYS[1] stock   hash    "<sku>:total" | ":reserved" | ":sold" | ":limit" -> integer,
--                         "<sku>:product" -> its catalog entry (JSON, written by set_stock and
--                         restore, read by snapshot), "<sku>:sale" -> its sale window (see
--                         parse_sale; written with the entry; absent: none), "<sku>:room" ->
--                         its waiting room (see parse_room; written with the entry; absent:
--                         none; the room's own keys are queue.lua's), ":expired" ->
--                         holds of the pool that lapsed, ever, and ":next" -> no hold of
--                         `holds` lapses before this time (ms; absent: not known), so a
--                         script that finds it in the future skips the range query of reclaim
-- KEYS[2] holds   zset    "<id>|<items>|<customer>", scored by hold expiry (ms, Redis TIME)
-- KEYS[3] usage   hash    "<sku>|<customer>" -> units that customer holds or bought, and
--                         ":holds|<customer>" -> how many members of `holds` are that
--                         customer's (live holds: held or awaiting payment), kept by every
--                         script that adds or removes a member (no SKU holds ':')
-- KEYS[4] waitlist hash   the waiting list's entries: "<sku>|<customer>" -> their entry (see
--                         decode_waiter), "@<offer id>" -> "<sku>|<customer>" while the offer
--                         is live, "<sku>:seq" -> joins so far, "<sku>:closed" -> '1' while the
--                         SKU's list is closed, "<sku>:offers" -> live offers, ":events" ->
--                         events so far, ":offer_ms" / ":retention_ms" -> an offer's hold and
--                         its record's retention (written by every join: the scripts that make
--                         offers take no such argument)
-- KEYS[5] line    zset    every SKU's line in one set, by text (scores all 0):
--                         "<sku>|<12-digit seq>|<customer>", so a SKU's head is the first
--                         member from "<sku>|" (no SKU holds '|'; '}' sorts after it)
-- KEYS[6] outbox  list    the shop's events, oldest first (RPUSH; the relay moves them to
--                         MongoDB): "<seq>|<ms>|<type>|<offer id>|<sku>|<qty>|<expires ms>|<customer>"
--                         (reservation/lua/outbox_entry.py decodes it)
-- KEYS[7] record  string  "<status>|<expires_at>|<created_at>|<late>|<items>|<customer>"
--                         (scripts about one reservation only; it has a TTL)
-- KEYS[8] fence   string  present while `reconcile` rebuilds the pool: scripts that sell
--                         (commit, restock) refuse to change `sold` meanwhile
-- The stock hash also keeps "<sku>:waiting" -> entries in the SKU's line (absent: none): read by
-- reserve in the HMGET of its counters, since no unit of a SKU is sold to the public while
-- someone waits for it.
-- ARGV[1] reclaim batch: at most this many lapsed holds are given back per call.
-- Items are "sku=qty,sku=qty"; SKUs never hold ',', '=', '|' or braces, ids never hold '|'.
--
-- Every script checks its arguments before it touches anything and answers
-- {'bad_request', <which argument>} to one it cannot use (a missing one too): numbers are
-- decimal digits (no sign, fraction, exponent or hex), SKUs and pools follow domain/rules.py
-- (1-64 of A-Za-z0-9._-), ids never hold '|'. The service validates first
-- (reservation/core/cart.py, domain/rules.py); these checks keep a script from failing, or
-- writing what it cannot read back, whoever calls it (tests/test_lua_fuzz.py).
--
-- Every key of a pool shares the pool's hash tag, so a script stays in one cluster slot. A
-- hold's member carries its cart, so a lapsed hold is given back from `holds` alone. A live
-- reservation is one whose member is in `holds` with a future score; `settle` turns a lapsed
-- held/awaiting_payment record into `expired` when it is touched.
-- Each redis.call costs more than the work most of them do, so calls are batched: one HMGET
-- for a cart's counters (and `:next`), one HSET to write them, one ZREM per reclaim batch; a
-- live record is trusted for its expiry (the member's score is always the record's
-- expires_at), so `holds` is asked only about a hold that has lapsed.
-- redis.call, and the running call's keys and arguments: set by begin() at the start of
-- every function (a library that loads may not read redis.call yet).
local call, KEYS, ARGV
local stock_key, holds_key, usage_key, reclaim_batch
local waitlist_key, line_key, outbox_key
-- The waiting list's hand-off (defined with the waiting list, below; reclaim and drop_hold
-- call them): offer the units of some SKUs that came back, and end a hold that was an offer.
local hand_off, offer_ended
local CHUNK = 1000  -- arguments per call, well under Lua's unpack limit
local MAX_UNITS = 1e12  -- a count of units (domain/rules.py MAX_STOCK)
local MAX_MS = 1e15  -- a duration in ms; added to TIME it stays an exact integer
local MAX_LINES = 1000  -- lines of a cart, so that its commands stay under the unpack limit
local EXPIRED = ':expired'  -- stock field counting the holds that lapsed (no SKU is empty)
local NEXT = ':next'  -- stock field: no hold lapses before this (ms); absent: unknown
local NEVER = '9999999999999999'  -- NEXT of a pool with no hold (later than any hold's end)
local HOLDS = ':holds|'  -- usage field prefix: a customer's live holds in this pool
-- record.late: '0' paid in time, '1' committed late, FINAL the payment was refused as oversold
-- or refunded with its units restocked; every later commit of it answers oversold.
local FINAL = 'x'

-- Library-level copies of the globals the hot path uses (a local is cheaper to reach). A
-- library that loads may read no global, so begin() takes them on the first call; the names
-- in runtime_globals are the globals, as the locals are declared after it.
local function runtime_globals()
  return tonumber, type, ipairs, pairs, unpack, string.find, string.match, string.gmatch,
    string.format, math.floor, math.max, math.min, table.concat
end
local tonumber, type, ipairs, pairs, unpack, find, match, gmatch, format, floor, max, min, concat

local function now_ms()
  local t = call('TIME')
  return tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
end

-- Pure functions of an argument's text are remembered across calls (the service sends the
-- same hold length, retention and carts again and again): at most CACHE_MAX entries per
-- table, which starts afresh when full. What they hold must never be changed by a caller.
local CACHE_MAX = 4096
local function remembered(compute)
  local known, size = {}, 0
  return function(text)
    local value = known[text]
    if value == nil then
      value = compute(text)
      if value == nil then return nil end
      if size >= CACHE_MAX then known, size = {}, 0 end
      known[text], size = value, size + 1
    end
    return value
  end
end

-- Decimal digits -> their number; nil for anything else (or nothing).
local digits = remembered(function(text)
  if type(text) ~= 'string' or #text > 16 or not find(text, '^%d+$') then return nil end
  return tonumber(text)
end)

-- A whole number in decimal digits, at most `max`; nil for anything else (or nothing).
local function whole(text, most)
  local n = digits(text)
  if n == nil or n > most then return nil end
  return n
end

-- A number as decimal digits ('%d': no exponent, which tostring would print from 1e15 up).
local function int(n) return format('%d', n) end
-- The same, remembered: for a record's TTL, the same sum of settings on every call.
local ttl_text = remembered(int)

local function is_name(text)
  return type(text) == 'string' and #text <= 64 and find(text, '^[A-Za-z0-9._%-]+$') ~= nil
end

local function is_id(text)
  return type(text) == 'string' and text ~= '' and not find(text, '|', 1, true)
end

local function is_text(value) return type(value) == 'string' end

-- Every function starts here: redis.call, the globals above and the call's keys and arguments.
local function start(keys, args)
  call, KEYS, ARGV = redis.call, keys, args
  if not concat then
    tonumber, type, ipairs, pairs, unpack, find, match, gmatch, format, floor, max, min, concat =
      runtime_globals()
  end
end

-- Every pool function starts here: start(), and ARGV[1] checked.
local function begin(keys, args)
  start(keys, args)
  stock_key, holds_key, usage_key = keys[1], keys[2], keys[3]
  waitlist_key, line_key, outbox_key = keys[4], keys[5], keys[6]
  if not outbox_key then return {'bad_request', 'keys'} end
  reclaim_batch = whole(args[1], MAX_UNITS)
  if not reclaim_batch or reclaim_batch < 1 then return {'bad_request', 'reclaim_batch'} end
  return nil
end

-- "sku=qty,..." -> {{sku, qty}, ...}, same SKU summed, first-seen order kept; nil unless every
-- line is a name, '=' and a count of units from 1 (empty lines too), at most MAX_LINES of them.
-- The result also keeps .skus (the SKUs in order) and .text (the cart encoded again, summed);
-- it is remembered, so callers only read it.
local parse_items = remembered(function(encoded)
  if not is_text(encoded) or encoded == '' then return nil end
  local items, index, lines = {}, {}, 0
  for line in gmatch(encoded .. ',', '([^,]*),') do
    lines = lines + 1
    local sku, qty = match(line, '^([^=]*)=(.*)$')
    local n = whole(qty, MAX_UNITS)
    if lines > MAX_LINES or not is_name(sku) or not n or n < 1 then return nil end
    if index[sku] then
      n = items[index[sku]][2] + n
      if n > MAX_UNITS then return nil end
      items[index[sku]][2] = n
    else
      items[#items + 1] = {sku, n}
      index[sku] = #items
    end
  end
  local skus, parts = {}, {}
  for i, item in ipairs(items) do
    skus[i] = item[1]
    item[3] = int(item[2])  -- the quantity as text, for commands that take it so
    parts[i] = item[1] .. '=' .. item[3]
  end
  items.skus, items.text = skus, concat(parts, ',')
  return items
end)

local function encode_items(items) return items.text end

local function call_chunked(command, key, args)
  for first = 1, #args, CHUNK do
    call(command, key, unpack(args, first, min(first + CHUNK - 1, #args)))
  end
end

-- Add {field = delta} to a hash in one HINCRBY, or one HMGET and one HSET for many fields.
-- With drop_empty, fields that reach zero are deleted (usage counts stay small).
local function add_to_hash(key, deltas, drop_empty)
  local fields = {}
  for field in pairs(deltas) do fields[#fields + 1] = field end
  if #fields == 0 then return end
  if #fields == 1 then
    local left = call('HINCRBY', key, fields[1], deltas[fields[1]])
    if drop_empty and left <= 0 then call('HDEL', key, fields[1]) end
    return
  end
  local set, gone = {}, {}
  for first = 1, #fields, CHUNK do
    local part = {unpack(fields, first, min(first + CHUNK - 1, #fields))}
    local current = call('HMGET', key, unpack(part))
    for i, field in ipairs(part) do
      local value = (tonumber(current[i]) or 0) + deltas[field]
      if drop_empty and value <= 0 then
        gone[#gone + 1] = field
      else
        set[#set + 1] = field
        set[#set + 1] = value
      end
    end
  end
  call_chunked('HSET', key, set)
  call_chunked('HDEL', key, gone)
end

-- Add a cart's quantities (times sign) to one counter of each SKU, and to the customer's usage.
local function add_counts(deltas, usage, items, counter, customer, sign)
  for _, item in ipairs(items) do
    local field = item[1] .. ':' .. counter
    deltas[field] = (deltas[field] or 0) + sign * item[2]
    if customer ~= '' and usage then
      local key = item[1] .. '|' .. customer
      usage[key] = (usage[key] or 0) + sign * item[2]
    end
  end
end

local function hold_member(id, items, customer) return id .. '|' .. items .. '|' .. customer end

-- A hold of `customer` joins (1) or leaves (-1) `holds`: their count of live holds follows.
local function count_hold(usage, customer, sign)
  if customer ~= '' then usage[HOLDS .. customer] = (usage[HOLDS .. customer] or 0) + sign end
end

-- Give back the units of lapsed holds, at most a batch. `due` is the pool's NEXT as read (nil:
-- unknown): while it is in the future nothing can have lapsed and nothing is asked. Returns
-- how many holds were given back, and NEXT as it stands after.
local function reclaim(now, due)
  if due and due > now then return 0, due end
  local lapsed = call('ZRANGE', holds_key, '-inf', now, 'BYSCORE', 'LIMIT', 0, reclaim_batch)
  if #lapsed > 0 then
    local deltas, usage, skus, seen = {}, {}, {}, {}
    for _, member in ipairs(lapsed) do
      local id, items, customer = match(member, '^([^|]*)|([^|]*)|(.*)$')
      local cart = parse_items(items) or {}
      add_counts(deltas, usage, cart, 'reserved', customer, -1)
      count_hold(usage, customer, -1)
      offer_ended(id, now, 'lapsed')
      for _, item in ipairs(cart) do
        if not seen[item[1]] then seen[item[1]], skus[#skus + 1] = true, item[1] end
      end
    end
    call_chunked('ZREM', holds_key, lapsed)
    deltas[EXPIRED] = #lapsed
    add_to_hash(stock_key, deltas, false)
    add_to_hash(usage_key, usage, true)
    hand_off(skus, now)
  end
  local first = call('ZRANGE', holds_key, 0, 0, 'WITHSCORES')
  call('HSET', stock_key, NEXT, first[2] or NEVER)
  return #lapsed, tonumber(first[2] or NEVER)
end

-- The pool's NEXT (nil: unknown) for a script that reads no counters first.
local function next_due() return tonumber(call('HGET', stock_key, NEXT)) end

-- Lapsed holds given back first, when any may have lapsed (one HGET otherwise).
local function reclaim_due(now) return reclaim(now, next_due()) end

-- Per SKU of `skus`: {total, reserved, sold, limit}, or false when it is not in this pool;
-- and NEXT (nil: unknown), by the same first HMGET; `with_gates`: the sale window (5th) and
-- the waiting room (6th) too, as their text or false, and the entries in its waiting list's
-- line (7th, 0 for none).
-- One HMGET per CHUNK fields (a cart's SKUs take one; a pool of thousands of SKUs, several).
-- A SKU's six field names, remembered for a name (a SKU is at most 64 characters; any text a
-- direct caller sends is not kept): the hot SKUs' names are not made again on every call
-- (joining strings is among the dearest small steps of a script).
local function make_field_names(sku)
  return {sku .. ':total', sku .. ':reserved', sku .. ':sold', sku .. ':limit', sku .. ':sale',
    sku .. ':room', sku .. ':waiting'}
end
local remembered_field_names = remembered(make_field_names)
local function field_names(sku)
  if #sku <= 64 then return remembered_field_names(sku) end
  return make_field_names(sku)
end

local function counters(skus, with_gates)
  local found, due = {}, nil
  local width = with_gates and 7 or 4
  local step = floor(CHUNK / width)
  for first = 1, max(#skus, 1), step do
    local last = min(first + step - 1, #skus)
    local fields = {}
    for i = first, last do
      local names, n = field_names(skus[i]), #fields
      for k = 1, width do fields[n + k] = names[k] end
    end
    if first == 1 then fields[#fields + 1] = NEXT end
    local values = call('HMGET', stock_key, unpack(fields))
    if first == 1 then due = tonumber(values[#fields]) end
    for i = first, last do
      local at = (i - first) * width
      if values[at + 1] then
        found[skus[i]] = {tonumber(values[at + 1]), tonumber(values[at + 2]) or 0,
                          tonumber(values[at + 3]) or 0, tonumber(values[at + 4]) or 0,
                          with_gates and values[at + 5] or false,
                          with_gates and values[at + 6] or false,
                          with_gates and tonumber(values[at + 7]) or 0}
      else
        found[skus[i]] = false
      end
    end
  end
  return found, due
end

-- The counters of `skus` after lapsed holds were given back (read again only if some were).
local function current_counters(skus, now)
  local c, due = counters(skus)
  if reclaim(now, due) > 0 then c = counters(skus) end
  return c
end

local function skus_of(items) return items.skus end

-- A sale window "<starts>|<ends>|<starts_at>|<ends_at>": bounds in ms of Redis TIME, then as
-- the API writes times (spliced into the product view); an empty bound is open on that side.
-- -> {starts, ends, starts_at, ends_at} (false: open side); nil for any other text, or a start
-- not before the end. Remembered: every reserve of the SKU reads it.
local TIME_TEXT = '[%dTZ:.%-]*'
local parse_sale = remembered(function(text)
  if not is_text(text) then return nil end
  local s, e, s_at, e_at = match(text, '^(%d*)|(%d*)|(' .. TIME_TEXT .. ')|(' .. TIME_TEXT .. ')$')
  if not s or #s > 16 or #e > 16 or (s == '') ~= (s_at == '') or (e == '') ~= (e_at == '') then
    return nil
  end
  local starts, ends = tonumber(s) or false, tonumber(e) or false
  if starts and ends and starts >= ends then return nil end
  return {starts, ends, s_at, e_at}
end)

-- Whether a SKU with this window (parsed; nil: none) is on sale at `now` (ms, Redis TIME):
-- from its start, inclusive, to its end, exclusive.
local function on_sale(sale, now)
  return not sale or ((not sale[1] or now >= sale[1]) and (not sale[2] or now < sale[2]))
end

-- A waiting room "<admit_per_second>|<max_active>|<admission_seconds>", each a whole number
-- from 1 -> {admit_per_second, max_active, admission_ms}; nil for any other text. Remembered.
local MAX_ROOM = 1e9
local parse_room = remembered(function(text)
  if not is_text(text) then return nil end
  local r, m, a = match(text, '^(%d+)|(%d+)|(%d+)$')
  r, m, a = whole(r, MAX_ROOM), whole(m, MAX_ROOM), whole(a, MAX_ROOM)
  if not r or not m or not a or r < 1 or m < 1 or a < 1 then return nil end
  return {r, m, a * 1000}
end)

-- Keep a SKU's catalog entry, sale window and waiting room (texts; '': none) beside its
-- counters; an empty entry keeps all three as they are. Whether the SKU is on sale at `now`.
local function keep_entry(sku, entry, sale_text, room_text, now)
  if entry ~= '' then
    call('HSET', stock_key, sku .. ':product', entry)
    if sale_text == '' then call('HDEL', stock_key, sku .. ':sale')
    else call('HSET', stock_key, sku .. ':sale', sale_text) end
    if room_text == '' then call('HDEL', stock_key, sku .. ':room')
    else call('HSET', stock_key, sku .. ':room', room_text) end
  else
    sale_text = call('HGET', stock_key, sku .. ':sale') or ''
  end
  return on_sale(sale_text ~= '' and parse_sale(sale_text) or nil, now)
end

-- An admission of a waiting room (queue.lua admits, reserve uses, room reads):
-- "<ticket>|<admitted ms>|<expires ms>|<used ms>|<reservation id>|<customer>", the last two
-- and used '' until a hold used it, customer '' for an anonymous buyer.
local function decode_admission(raw)
  local ticket, admitted, expires, used, reservation, customer =
    match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if not ticket then return nil end
  return {ticket = ticket, admitted = admitted, expires = tonumber(expires) or 0,
          expires_text = expires, used = used, reservation = reservation, customer = customer}
end

local function encode_admission(a)
  return a.ticket .. '|' .. a.admitted .. '|' .. a.expires_text .. '|' .. a.used .. '|'
    .. a.reservation .. '|' .. a.customer
end

-- A record: its times stay the text they were read as (created_at is never computed with, and
-- expires_at is written back as it came unless it changes: set_expiry), since turning a
-- number into text is the dearest small step a script takes.
local function decode_record(raw)
  if not raw then return nil end
  local status, expires_at, created_at, late, items, customer =
    match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return {status = status, expires_at = tonumber(expires_at), expires_text = expires_at,
          created_text = created_at, late = late, items = items, customer = customer}
end

-- A new record (its expiry set next with set_expiry).
local function new_record(status, created_ms, items, customer)
  return {status = status, created_text = int(created_ms), late = '0', items = items,
          customer = customer}
end

local function set_expiry(r, ms) r.expires_at, r.expires_text = ms, int(ms) end

local function encode_record(r)
  return r.status .. '|' .. r.expires_text .. '|' .. r.created_text .. '|' .. r.late .. '|'
    .. r.items .. '|' .. r.customer
end

-- ttl_ms nil keeps the record's current TTL; 0 keeps it a millisecond (PX takes no 0).
local function write_record(key, r, ttl_ms)
  if ttl_ms then
    call('SET', key, encode_record(r), 'PX', int(max(ttl_ms, 1)))
  else
    call('SET', key, encode_record(r), 'KEEPTTL')
  end
end

local function is_live(r) return r.status == 'held' or r.status == 'awaiting_payment' end

-- Give a live reservation's hold up: its units go back unless they were sold (then `sold`
-- takes them: one HMGET and one HSET for both counters). A hold that was a waiting list's offer
-- ends as `ending` ('lapsed', 'left': given back, 'bought'); units given back are offered to
-- the lines of their SKUs first (see hand_off).
local function drop_hold(id, r, give_back, sell, now, ending)
  local removed = call('ZREM', holds_key, hold_member(id, r.items, r.customer))
  local usage = {}
  if give_back or sell then
    local deltas, items = {}, parse_items(r.items)
    add_counts(deltas, usage, items, 'reserved', give_back and r.customer or '', -1)
    if sell then add_counts(deltas, nil, items, 'sold', '', 1) end
    add_to_hash(stock_key, deltas, false)
  end
  if removed == 1 then count_hold(usage, r.customer, -1) end
  add_to_hash(usage_key, usage, true)
  if removed == 1 then
    offer_ended(id, now, ending)
    if give_back then hand_off(skus_of(parse_items(r.items)), now) end
  end
end

-- The record as it stands now: a live status whose hold lapsed becomes expired (its units go
-- back here if the batch reclaim has not reached it yet). A live record whose expiry is still
-- ahead is live: its member's score is that same expiry, so `holds` is not asked.
local function settle(id, record_key, r, now)
  if is_live(r) and r.expires_at <= now then
    local expiry = call('ZSCORE', holds_key, hold_member(id, r.items, r.customer))
    if not expiry or tonumber(expiry) <= now then
      if expiry then
        drop_hold(id, r, true, false, now, 'lapsed')
        call('HINCRBY', stock_key, EXPIRED, 1)
      end
      r.status = 'expired'
      write_record(record_key, r, nil)
    end
  end
  return r
end

-- Reservation `id` as it stands at `now` (its own lapse settled); nil when there is none.
local function current_record(id, record_key, now)
  local r = decode_record(call('GET', record_key))
  if r then settle(id, record_key, r, now) end
  return r
end

-- True while reconcile rebuilds this pool from MongoDB (see KEYS[8]).
local function fenced() return call('EXISTS', KEYS[8]) == 1 end

-- The reply shape of every script about one reservation (decoded once: _pool.py beside this).
local function record_reply(outcome, r)
  return {outcome, r.status, r.items, r.customer, r.expires_text, r.created_text, r.late}
end

-- ---- the waiting list: units that come back go to the buyers in line first ----------------
-- An entry of `waitlist` "<sku>|<customer>": "<status>|<seq>|<qty>|<joined ms>|<offer id>|<offer
-- expires ms>", status waiting (in `line`), offered (its offer is a live hold), lapsed (the
-- offer lapsed unbought), left (left the line, was removed, the list closed, or the offer was
-- given back) or bought (the offer was paid for); seq the 12-digit place of its line member.
-- The offer id is chosen by the join (the service's random token: a script has no randomness
-- of its own), "<pool>.wl-<22 characters>", so an id that is no offer's is told apart without
-- asking `waitlist` (ordinary ids carry 16 characters).
local function decode_waiter(raw)
  if not raw then return nil end
  local status, seq, qty, joined, offer, expires =
    match(raw, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if not status then return nil end
  return {status = status, seq = seq, quantity = tonumber(qty) or 0, quantity_text = qty,
          joined = joined, offer = offer, expires = expires}
end

local function encode_waiter(w)
  return concat({w.status, w.seq, w.quantity_text, w.joined, w.offer, w.expires}, '|')
end

local function line_member(sku, w, customer) return sku .. '|' .. w.seq .. '|' .. customer end
-- The bounds of a SKU's members in `line`, by text.
local function line_first(sku) return '[' .. sku .. '|' end
local function line_last(sku) return '(' .. sku .. '}' end

-- 1 for the head of the SKU's line.
local function line_position(sku, w, customer)
  return call('ZLEXCOUNT', line_key, line_first(sku), '(' .. line_member(sku, w, customer)) + 1
end

local function is_offer_id(id)
  local token = match(id, '%.(wl%-[%w_%-]*)$')
  return token ~= nil and #token == 25
end

-- Add to "<sku>:waiting" (the line's length, beside the counters; absent when 0).
local function count_waiting(sku, delta)
  if call('HINCRBY', stock_key, sku .. ':waiting', delta) <= 0 then
    call('HDEL', stock_key, sku .. ':waiting')
  end
end

-- One event for the shop, appended to `outbox` (see KEYS[6]).
local function tell_shop(kind, sku, w, customer, now)
  local seq = call('HINCRBY', waitlist_key, ':events', 1)
  call('RPUSH', outbox_key, concat({int(seq), int(now), kind, w.offer, sku, w.quantity_text,
    w.expires, customer}, '|'))
end

-- A hold that left `holds` unsold or sold: if it was a live offer, its entry ends as `ending`
-- (a lapse is told to the shop).
offer_ended = function(id, now, ending)
  if not is_offer_id(id) then return end
  local owner = call('HGET', waitlist_key, '@' .. id)
  if not owner then return end
  local sku, customer = match(owner, '^([^|]*)|(.*)$')
  local w = decode_waiter(call('HGET', waitlist_key, owner))
  call('HDEL', waitlist_key, '@' .. id)
  if call('HINCRBY', waitlist_key, sku .. ':offers', -1) <= 0 then
    call('HDEL', waitlist_key, sku .. ':offers')
  end
  if not w or w.offer ~= id or w.status ~= 'offered' then return end
  w.status = ending
  call('HSET', waitlist_key, owner, encode_waiter(w))
  if ending == 'lapsed' then tell_shop('offer_lapsed', sku, w, customer, now) end
end

-- The head's entry becomes an offer: a hold of its quantity for its customer, made here as a
-- reserve would make it (record, member of `holds`, counters, usage, `:next`), told to the shop.
local function make_offer(sku, head, w, customer, now, offer_ms, retention_ms)
  local r = new_record('held', now, sku .. '=' .. w.quantity_text, customer)
  set_expiry(r, now + offer_ms)
  local record_key = match(stock_key, '^(.*):stock$') .. ':res:' .. w.offer
  call('SET', record_key, encode_record(r), 'PX', int(offer_ms + retention_ms))
  call('ZADD', holds_key, r.expires_text, hold_member(w.offer, r.items, customer))
  local due = tonumber(call('HGET', stock_key, NEXT))
  if due and r.expires_at < due then call('HSET', stock_key, NEXT, r.expires_text) end
  call('HINCRBY', stock_key, sku .. ':reserved', w.quantity_text)
  local usage = {[sku .. '|' .. customer] = w.quantity}
  count_hold(usage, customer, 1)
  add_to_hash(usage_key, usage, true)
  call('ZREM', line_key, head)
  count_waiting(sku, -1)
  w.status, w.expires = 'offered', r.expires_text
  call('HSET', waitlist_key, sku .. '|' .. customer, encode_waiter(w), '@' .. w.offer,
    sku .. '|' .. customer)
  call('HINCRBY', waitlist_key, sku .. ':offers', 1)
  tell_shop('offer_created', sku, w, customer, now)
end

-- Offer a SKU's available units (its counters `s`) to its line, head first, while the head's
-- quantity fits: a head that does not fit keeps its place and holds back the rest (strict
-- order: a smaller request behind it never passes it).
local function offer_units(sku, s, now, offer_ms, retention_ms)
  local available = s[1] - s[2] - s[3]
  while available > 0 do
    local head = call('ZRANGE', line_key, line_first(sku), line_last(sku), 'BYLEX',
      'LIMIT', 0, 1)[1]
    if not head then
      call('HDEL', stock_key, sku .. ':waiting')
      return
    end
    local customer = match(head, '^[^|]*|[^|]*|(.*)$')
    local w = decode_waiter(call('HGET', waitlist_key, sku .. '|' .. customer))
    if not w or w.status ~= 'waiting' or line_member(sku, w, customer) ~= head then
      call('ZREM', line_key, head)  -- a member with no entry waiting: never left so, dropped
      count_waiting(sku, -1)
    else
      if w.quantity > available then return end
      make_offer(sku, head, w, customer, now, offer_ms, retention_ms)
      available = available - w.quantity
    end
  end
end

-- Units of these SKUs came back (or a line's head left): the SKUs with a line offer them,
-- unless their sale has ended (a line waits for a sale that is on; a PUT may move the end).
-- Costs one HMGET when no SKU has a line.
hand_off = function(skus, now)
  if #skus == 0 then return end
  local fields = {}
  for i, sku in ipairs(skus) do
    fields[2 * i - 1], fields[2 * i] = sku .. ':waiting', sku .. ':sale'
  end
  local found = call('HMGET', stock_key, unpack(fields))
  local lined = {}
  for i, sku in ipairs(skus) do
    local sale = found[2 * i] and parse_sale(found[2 * i])
    local ended = sale and sale[2] and now >= sale[2]
    if tonumber(found[2 * i - 1]) and not ended then lined[#lined + 1] = sku end
  end
  if #lined == 0 then return end
  local settings = call('HMGET', waitlist_key, ':offer_ms', ':retention_ms')
  local offer_ms, retention_ms = tonumber(settings[1]) or 600000, tonumber(settings[2]) or 0
  local c = counters(lined)
  for _, sku in ipairs(lined) do
    if c[sku] then offer_units(sku, c[sku], now, offer_ms, retention_ms) end
  end
end
