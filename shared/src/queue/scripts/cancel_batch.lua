-- Ends up to ARGV[6] not-yet-started jobs of a cancelled batch (source ARGV[5]) of this
-- kind: each becomes `cancelled` (common.lua's cancel_job: its idempotency key is released,
-- so a corrected file can be run again). Jobs that already ran keep going. ARGV[7] =
-- retention of finished jobs (s). Call it until nothing remains.
-- Returns {cancelled, remaining in its lists, dependent refs...} (the dependents, waiting on
-- a cancelled job, are cancelled too by the caller).
local source = ARGV[5]
local max = tonumber(ARGV[6])
local retention = ARGV[7]
check_queue_keys('pending', 'scheduled', 'waiting', 'sources')
local done = 0
local deps = {}
local remaining = 0
for _, lane in ipairs({'bulk', 'live'}) do
  local list = ready_list(lane, source)
  while done < max do
    local id = redis.pcall('LPOP', list)
    if type(id) ~= 'string' then break end
    local entry = redis.call('HGET', prefix .. 'pending', id)
    local f = read_job(id, 'state')
    if entry or (f and f[1] == 'queued') then
      for _, d in ipairs(cancel_job(id, entry, source, retention)) do deps[#deps + 1] = d end
      done = done + 1
    end
  end
  local left = redis.pcall('LLEN', list)
  if type(left) == 'number' then
    remaining = remaining + left
    if left == 0 then redis.call('SREM', prefix .. 'sources', lane .. ':' .. source) end
  end
end
if done > 0 then trim_events() end
local out = {done, remaining}
for _, d in ipairs(deps) do out[#out + 1] = d end
return out
