-- outbox_trim: drop the first `count` entries of a pool's outbox list, once they are in
-- MongoDB, only if the list still starts with the entry the relay read first; another relay
-- (one whose lease lapsed meanwhile) that trimmed them already makes this a no-op, so no
-- entry that was never moved is dropped. Every entry carries its pool's own seq: no entry
-- is ever equal to another.
-- Not a pool script: no prelude; its one key is the pool's (hash tag) outbox.
-- KEYS[1] outbox  list  "<seq>|<at ms>|<type>|<reservation id>|<sku>|<qty>|<expires ms>|<customer>"
-- ARGV[1] count (entries, 1 to 10^6), ARGV[2] the first entry read (its exact text)
-- Reply: 1 trimmed | 0 the list no longer starts with that entry (nothing written)
--      | {'bad_request', argument}
local count = whole(ARGV[1], 1e6)
if not count or count < 1 then return {'bad_request', 'count'} end
if not is_text(ARGV[2]) or ARGV[2] == '' then return {'bad_request', 'first'} end
if call('LINDEX', KEYS[1], 0) ~= ARGV[2] then return 0 end
call('LTRIM', KEYS[1], count, -1)
return 1
