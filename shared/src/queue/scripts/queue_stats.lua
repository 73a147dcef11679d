-- Counts one queue's jobs per state, its due jobs per lane, its running totals and the age
-- of its oldest due job (on Redis's clock), and whether the kind is paused. Writes nothing;
-- a key of the wrong type counts as empty and is named in the reply (fetch moves it aside).
-- Its cost grows with the number of sources with due jobs, never with the number of jobs.
-- Returns {waiting, queued, queued_live, queued_bulk, running, scheduled, awaiting, dead,
--   enqueued, succeeded, expired, cancelled, leases_expired, started, oldest_ready_age_ms,
--   paused (0/1), malformed key names...}.
local bad = {}
local function count(cmd, key)
  local n = redis.pcall(cmd, key)
  if type(n) == 'table' then
    bad[#bad + 1] = key
    return 0
  end
  return n
end
local queued = {live = 0, bulk = 0}
local oldest = nil
local lists = redis.pcall('SMEMBERS', prefix .. 'sources')
if lists.err then
  bad[#bad + 1] = prefix .. 'sources'
  lists = {}
end
for _, lane_source in ipairs(lists) do
  local colon = string.find(lane_source, ':', 1, true)
  local lane = colon and string.sub(lane_source, 1, colon - 1)
  if queued[lane] then
    local list = prefix .. 'ready:' .. lane_source
    queued[lane] = queued[lane] + count('LLEN', list)
    local head = redis.pcall('LINDEX', list, 0)
    if type(head) == 'string' then
      local since = nil
      local f = read_job(head, 'updated_ms')
      if f and f[1] then since = whole(f[1], nil) end
      if not since then
        local entry = redis.pcall('HGET', prefix .. 'pending', head)
        if type(entry) == 'string' then since = whole(parse_pending(entry)[3], nil) end
      end
      if since and (not oldest or since < oldest) then oldest = since end
    end
  end
end
if type(redis.pcall('HLEN', prefix .. 'pending')) == 'table' then
  bad[#bad + 1] = prefix .. 'pending'
end
local out = {count('ZCARD', prefix .. 'waiting'), queued.live + queued.bulk, queued.live,
  queued.bulk, count('ZCARD', prefix .. 'leased'), count('ZCARD', prefix .. 'scheduled'),
  count('ZCARD', prefix .. 'awaiting'), count('ZCARD', prefix .. 'dead')}
local counts = redis.pcall('HMGET', prefix .. 'counts', 'enqueued', 'succeeded', 'expired',
  'cancelled', 'leases_expired', 'started')
if counts.err then
  bad[#bad + 1] = prefix .. 'counts'
  counts = {}
end
for i = 1, 6 do out[#out + 1] = whole(counts[i], 0) or 0 end
out[#out + 1] = (oldest and oldest < now) and (now - oldest) or 0
local paused = redis.pcall('SISMEMBER', provider_prefix .. 'paused-kinds', kind)
out[#out + 1] = (paused == 1) and 1 or 0
for _, b in ipairs(bad) do out[#out + 1] = b end
return out
