-- Pauses a provider for every worker: keeps the LONGER of the current cool-down and the new
-- one, in one step (a PTTL then a SET from the client could let a shorter pause replace a
-- longer one set in between).
-- KEYS[1] = the provider's cool-down key. ARGV[1] = the pause, in ms.
-- Returns 1 when the pause was set or lengthened, 0 when a longer one was already running.
local pause = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) >= pause then return 0 end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
return 1
