-- reserve: hold every line of a cart, or nothing.
-- KEYS: pool keys 1-6 (see _pool.lua), KEYS[7] the reservation's record; with an admission
-- token, KEYS[8] and KEYS[9] the `admissions` and `live` keys of the waiting room of the SKU
-- the token names (queue.lua; absent: the token is not one the service made).
-- ARGV[2] reservation id, ARGV[3] hold length (ms), ARGV[4] record retention after the hold (ms),
-- ARGV[5] customer id ('' for none), ARGV[6] cart "sku=qty,..." (a SKU twice is summed),
-- ARGV[7] '1' when the id is freshly made (it cannot exist yet: a refusal skips that lookup),
-- ARGV[8] '1' to refuse a cart without a customer id that holds a SKU with a limit,
-- ARGV[9] the most live holds one customer id may have in this pool (0: no cap; to 10^12),
-- ARGV[10] the admission token ('' for none; "<sku>.<random>", made by queue.lua).
-- A SKU's limit bounds every reservation; with a customer id, also what that customer holds or
-- bought of it. The cap counts the customer's live holds (held or awaiting payment, not paid):
-- a hold that is released, lapses or is paid for frees its place.
-- Reply: {'held', expires_at_ms, created_at_ms} (the hold as asked: status held, the cart as
--        sent, summed, the customer as sent, not late)
--      | {'existing', status, items, customer, expires_at_ms, created_at_ms, late}
--   (times as decimal text)
--      | {'unknown_sku', sku} | {'not_on_sale', sku, starts_ms, ends_ms} ('' for an open side)
--      | {'insufficient', sku, requested, available, windowed ('1': the SKU's sale has an end,
--        so a process must not remember it as sold out past that end)}
--      | {'customer_limit', sku, limit, already} | {'customer_required', sku}
--      | {'hold_cap', cap, held} | {'admission_required', sku} | {'admission_invalid', sku}
--      | {'admission_used', sku} | {'bad_request', reason}
-- A SKU is on sale inside its window (`<sku>:sale`, by Redis TIME), read by the same HMGET as
-- its counters; the window is checked here only: a commit of a hold made inside it is honoured.
-- A SKU with a waiting room (`<sku>:room`, by the same HMGET) is held only with an admission
-- token of that SKU's room, the buyer's own, live and unused; it is checked before any stock,
-- and a hold marks it used (its `admissions` entry takes the time and the reservation id, and
-- it leaves `live`, freeing its place); a refusal leaves it as it was. A token is one SKU's:
-- a second SKU with a room in the cart answers admission_required. Without a room, the gate
-- costs nothing but the HMGET's field.
-- A refusal costs TIME and one HMGET (counters and `:next`; with a customer id, one more of
-- their usage); a hold adds SET, one HSET of the counters (and `:next` when this hold lapses
-- first), ZADD, and with a customer id one HSET of their usage. Lapsed holds are reclaimed
-- first only when `:next` says one may have lapsed.
local record_key = KEYS[7]
local id = ARGV[2]
local hold_ms = whole(ARGV[3], MAX_MS)
local retention_ms = whole(ARGV[4], MAX_MS)
local customer = ARGV[5]
local items = parse_items(ARGV[6])
local fresh = ARGV[7] == '1'
local require_customer = ARGV[8] == '1'
local hold_cap = whole(ARGV[9], MAX_UNITS)
local token = ARGV[10] or ''

if not items then return {'bad_request', 'cart'} end
if not hold_ms or hold_ms < 1 or not retention_ms or retention_ms < 0 then
  return {'bad_request', 'hold'}
end
if not is_id(id) then return {'bad_request', 'id'} end
if not is_text(customer) then return {'bad_request', 'customer'} end
if not hold_cap then return {'bad_request', 'hold_cap'} end
if not is_text(token) then return {'bad_request', 'admission_token'} end

local now = now_ms()
local skus = skus_of(items)
local c, due = counters(skus, true)
local reclaimed
reclaimed, due = reclaim(now, due)
if reclaimed > 0 then c = counters(skus, true) end

-- What the customer holds or bought of each SKU, and their live holds: read whenever there is
-- a customer, since a hold writes them all back.
local used, usage_fields = {}, {}
if customer ~= '' then
  for i, sku in ipairs(skus) do usage_fields[i] = sku .. '|' .. customer end
  usage_fields[#usage_fields + 1] = HOLDS .. customer
  local values = call('HMGET', usage_key, unpack(usage_fields))
  for i, field in ipairs(usage_fields) do used[field] = tonumber(values[i]) or 0 end
end

-- The admission `token` for `sku` (a SKU with a room): nil when it may hold, else the refusal.
-- `admission` keeps the token's entry, to be marked used by the hold.
local admission
local function admission_refusal(sku)
  if token == '' then return {'admission_required', sku} end
  local token_sku = match(token, '^(.*)%.[^.]*$')
  if token_sku ~= sku then
    local other = token_sku and c[token_sku]
    -- The token is for another SKU of this cart that has a room: this one has none of its own.
    if other and other[6] then return {'admission_required', sku} end
    return {'admission_invalid', sku}
  end
  if not KEYS[9] then return {'admission_invalid', sku} end
  local raw = call('HGET', KEYS[8], token)
  local a = raw and decode_admission(raw)
  if not a or a.customer ~= customer then return {'admission_invalid', sku} end
  if a.used ~= '' then return {'admission_used', sku} end
  if a.expires <= now then return {'admission_invalid', sku} end
  admission = a
  return nil
end

-- Check everything before writing anything: what each SKU is and whether it may be held now
-- (its sale window, its waiting room), then the units.
local function refusal()
  for _, item in ipairs(items) do
    local sku = item[1]
    local s = c[sku]
    if not s then return {'unknown_sku', sku} end
    local sale = s[5] and parse_sale(s[5])
    if not on_sale(sale, now) then
      return {'not_on_sale', sku, sale[1] and int(sale[1]) or '', sale[2] and int(sale[2]) or ''}
    end
    if s[6] then
      local refused = admission_refusal(sku)
      if refused then return refused end
    end
  end
  for _, item in ipairs(items) do
    local sku, qty = item[1], item[2]
    local s = c[sku]
    local limit = s[4]
    if limit > 0 and customer == '' and require_customer then return {'customer_required', sku} end
    -- Nothing is sold to the public while someone waits in the SKU's line (the units that came
    -- back and did not fit its head are kept for it).
    local available = s[7] > 0 and 0 or s[1] - s[2] - s[3]
    if qty > available then
      local sale = s[5] and parse_sale(s[5])
      local windowed = sale and sale[2]
      return {'insufficient', sku, qty, math.max(available, 0), windowed and '1' or '0'}
    end
    local already = used[sku .. '|' .. customer] or 0
    if limit > 0 and already + qty > limit then return {'customer_limit', sku, limit, already} end
  end
  local held = used[HOLDS .. customer] or 0
  if customer ~= '' and hold_cap > 0 and held >= hold_cap then
    return {'hold_cap', hold_cap, held}
  end
  return nil
end

local function existing(raw)
  return record_reply('existing', settle(id, record_key, decode_record(raw), now))
end

local refused = refusal()
if refused then
  -- A retry of a reservation that exists answers what it is now, whatever the stock says.
  if not fresh then
    local raw = call('GET', record_key)
    if raw then return existing(raw) end
  end
  return refused
end

local record = new_record('held', now, encode_items(items), customer)
set_expiry(record, now + hold_ms)
local previous = call('SET', record_key, encode_record(record), 'PX', ttl_text(hold_ms + retention_ms),
  'NX', 'GET')
if previous then return existing(previous) end

-- A 1-SKU cart adds its quantity's text; a bigger one writes its counters whole (this script
-- read them and nothing ran in between); `:next` moves when this hold is the first to lapse.
local first_to_lapse = due == nil or record.expires_at < due
if #items == 1 and not first_to_lapse then
  call('HINCRBY', stock_key, items[1][1] .. ':reserved', items[1][3])
else
  local set = {}
  for _, item in ipairs(items) do
    set[#set + 1] = item[1] .. ':reserved'
    set[#set + 1] = int(c[item[1]][2] + item[2])
  end
  if first_to_lapse then
    set[#set + 1] = NEXT
    set[#set + 1] = record.expires_text
  end
  call('HSET', stock_key, unpack(set))
end
if customer ~= '' then
  local usage = {}
  for _, item in ipairs(items) do
    local field = item[1] .. '|' .. customer
    usage[#usage + 1] = field
    usage[#usage + 1] = int(used[field] + item[2])
  end
  usage[#usage + 1] = HOLDS .. customer
  usage[#usage + 1] = int(used[HOLDS .. customer] + 1)
  call('HSET', usage_key, unpack(usage))
end
call('ZADD', holds_key, record.expires_text, hold_member(id, record.items, customer))
if admission then
  admission.used, admission.reservation = record.created_text, id
  call('HSET', KEYS[8], token, encode_admission(admission))
  call('ZREM', KEYS[9], token)
end
return {'held', record.expires_text, record.created_text}
