-- Global rate limit for one provider action, shared by every worker process (GCRA).
-- KEYS[1] = the limit's theoretical-arrival-time key, KEYS[2] = the provider's cool-down
-- key; both carry the provider's hash tag, so the script touches one slot.
-- ARGV[1] = emission interval (ms per request), ARGV[2] = longest wait the caller will
-- sleep through (ms).
-- "Now" is Redis's TIME: a caller whose clock runs fast cannot take slots ahead of others.
-- A caller that is admitted RESERVES its slot: it must send at now + wait.
-- Returns {admitted (1/0), wait_ms, cool-down (1 when the wait is a provider's pause)}.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])

-- A provider that answered "slow down" is paused for every worker until the cool-down ends.
local cooldown_ms = redis.call('PTTL', KEYS[2])
if cooldown_ms > 0 then
  return {0, cooldown_ms, 1}
end

-- The slot key holds a number; anything else (poison) is dropped rather than let it stop
-- every request to the provider.
local stored = redis.pcall('GET', KEYS[1])
if type(stored) == 'table' then
  redis.call('DEL', KEYS[1])
  stored = false
end
local tat = tonumber(stored or '0') or 0
if tat < now then tat = now end
local wait = tat - now
if wait > max_wait then
  return {0, wait, 0}
end
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX',
  string.format('%d', math.ceil(wait + interval * 2 + 1000)))
return {1, wait, 0}
