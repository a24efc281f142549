-- reclaim: one sweeper batch; gives back the units of lapsed holds.
-- KEYS: pool keys 1-6 (see _pool.lua).
-- Reply: {reclaimed in this call, lapsed holds still waiting} | {'bad_request', argument}
local now = now_ms()
local reclaimed = reclaim(now)
return {reclaimed, call('ZCOUNT', holds_key, '-inf', now)}
