-- Counts one queue's jobs per state, its running totals and the age of its oldest due job
-- (on Redis's clock). Writes nothing; a key of the wrong type counts as empty and is named
-- in the reply (fetch moves it aside).
-- Returns {waiting, queued, running, scheduled, awaiting, dead, enqueued, succeeded,
--   expired, leases_expired, oldest_ready_age_ms, malformed key names...}.
local function count(cmd, name)
  local n = redis.pcall(cmd, prefix .. name)
  if type(n) == 'table' then return 0, prefix .. name end
  return n
end
local bad = {}
local out = {}
for _, k in ipairs({{'ZCARD', 'waiting'}, {'LLEN', 'ready'}, {'ZCARD', 'leased'},
    {'ZCARD', 'scheduled'}, {'ZCARD', 'awaiting'}, {'ZCARD', 'dead'}}) do
  local n, wrong = count(k[1], k[2])
  out[#out + 1] = n
  if wrong then bad[#bad + 1] = wrong end
end
if type(redis.pcall('HLEN', prefix .. 'pending')) == 'table' then
  bad[#bad + 1] = prefix .. 'pending'
end
local counts = redis.pcall('HMGET', prefix .. 'counts', 'enqueued', 'succeeded', 'expired',
  'leases_expired')
if counts.err then
  bad[#bad + 1] = prefix .. 'counts'
  counts = {}
end
for i = 1, 4 do out[#out + 1] = whole(counts[i], 0) or 0 end
local age = 0
local head = redis.pcall('LINDEX', prefix .. 'ready', 0)
if type(head) == 'string' then
  local since = nil
  local f = read_job(head, 'updated_ms')
  if f and f[1] then since = whole(f[1], nil) end
  if not since then
    local entry = redis.pcall('HGET', prefix .. 'pending', head)
    if type(entry) == 'string' then since = whole(parse_pending(entry)[3], nil) end
  end
  if since and since < now then age = now - since end
end
out[#out + 1] = age
for _, b in ipairs(bad) do out[#out + 1] = b end
return out
