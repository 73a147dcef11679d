-- Global rate limit for one provider action, shared by every worker process (GCRA).
-- KEYS[1] = the action's theoretical-arrival-time key, KEYS[2] = the provider's cool-down
-- key; both carry the provider's hash tag, so the script touches one slot.
-- ARGV[1] = now (ms), ARGV[2] = emission interval (ms per request),
-- ARGV[3] = longest wait the caller will sleep through (ms).
-- A caller that is admitted RESERVES its slot: it must send at now + wait.
-- Returns {admitted (1/0), wait_ms, cool-down (1 when the wait is a provider's pause)}.
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])

-- A provider that answered "slow down" is paused for every worker until the cool-down ends.
local cooldown_ms = redis.call('PTTL', KEYS[2])
if cooldown_ms > 0 then
  return {0, cooldown_ms, 1}
end

local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > max_wait then
  return {0, wait, 0}
end
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(wait + interval * 2 + 1000))
return {1, wait, 0}
