-- Sets a source's state at this provider: `paused` takes its lists out of the rings (its
-- jobs stay queued, unclaimed), `active` puts back those with work, `cancelled` takes them
-- out for good (cancel_batch.lua then ends its jobs, and a claim cancels any it meets).
-- ARGV[5] = the source, ARGV[6] = the state, ARGV[7] = number of kinds of the provider,
-- then the kinds. Returns {previous state ('active' when none was set)}.
local source = ARGV[5]
local state = ARGV[6]
check_queue_keys('ring:live', 'ring:bulk', 'paused-sources')
local key = provider_prefix .. 'source:' .. source
if redis.call('TYPE', key)['ok'] ~= 'hash' and redis.call('EXISTS', key) == 1 then
  set_aside(key, 'hash')
end
local previous = redis.call('HGET', key, 'state') or 'active'
if previous == 'cancelled' then return {previous} end
redis.call('HSET', key, 'state', state)
for i = 1, tonumber(ARGV[7]) do
  use_kind(ARGV[7 + i])
  for _, lane in ipairs({'live', 'bulk'}) do
    local ring = provider_prefix .. 'ring:' .. lane
    local entry = kind .. '|' .. source
    redis.call('LREM', ring, 0, entry)
    if state == 'active' and redis.call('LLEN', ready_list(lane, source)) > 0 then
      redis.call('RPUSH', ring, entry)
    end
  end
end
if state == 'active' then
  redis.call('SREM', provider_prefix .. 'paused-sources', source)
  wake()
else
  redis.call('SADD', provider_prefix .. 'paused-sources', source)
end
return {previous}
