-- Global rate limit for one provider's limit, shared by every worker process: hands out
-- the next request slot (slots.lua, prepended) to a request that did not get one when its
-- job was claimed (a reconciliation look-up, a page of a list).
-- KEYS[1] = the limit's slot key, KEYS[2] = the provider's cool-down key; both carry the
-- provider's hash tag, so the script touches one slot.
-- ARGV[1] = requests per second, ARGV[2] = the guard at the end of each second (µs),
-- ARGV[3] = longest wait the caller will sleep through (µs).
-- "Now" is Redis's TIME: a caller whose clock runs fast cannot take slots ahead of others.
-- A caller that is admitted RESERVES its slot: it must send at now + wait.
-- Returns {admitted (1/0), wait_us, cool-down (1 when the wait is a provider's pause)}.
local clock = redis.call('TIME')
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local rate = tonumber(ARGV[1])
local guard = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])

-- A provider that answered "slow down" is paused for every worker until the cool-down ends.
local cooldown_ms = redis.call('PTTL', KEYS[2])
if cooldown_ms > 0 then
  return {0, cooldown_ms * 1000, 1}
end

local s = read_slot(KEYS[1], now_us, rate, guard)
local wait = slot_time(s, rate, guard) - now_us
if wait > max_wait then
  return {0, wait, 0}
end
write_slot(KEYS[1], slot_after(s, rate), now_us, rate, guard)
count_slots_used(KEYS[1], 1)
return {1, wait, 0}
