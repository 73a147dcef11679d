-- Enqueues one or more jobs atomically: payload, metadata and the ready list (or the
-- scheduled / waiting set) in one step per job.
-- ARGV[6] = number of jobs, then 6 values per job:
--   id, payload, max_attempts, run_at_ms (0 = now), parent id ('' = none),
--   idempotency key ('' = none; already hashed by the caller)
-- Returns, per job: the id that now stands for it, and 1 when it was a duplicate of an
-- earlier enqueue with the same idempotency key (then the FIRST job's id), else 0.
--
-- Bulk enqueue is the hot path of a backfill, so what can be done once per call is: one
-- RPUSH of all ready ids, one counter update, one wake-up of idle workers.
local n = tonumber(ARGV[6])
local out = {}
local ready = {}
local added = 0
for i = 0, n - 1 do
  local base = 7 + i * 6
  local id = ARGV[base]
  local payload = ARGV[base + 1]
  local max_attempts = ARGV[base + 2]
  local run_at = tonumber(ARGV[base + 3])
  local parent = ARGV[base + 4]
  local idem = ARGV[base + 5]
  local existing = false
  if idem ~= '' then
    -- SET NX GET: claims the key, or returns who holds it, in one command.
    existing = redis.call('SET', prefix .. 'idem:' .. idem, id, 'NX', 'GET')
  end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 1
  else
    local state
    if parent ~= '' then
      state = 'waiting'
      redis.call('ZADD', prefix .. 'waiting', now, id)
    elseif run_at > now then
      state = 'scheduled'
      redis.call('ZADD', prefix .. 'scheduled', run_at, id)
    else
      state = 'queued'
      ready[#ready + 1] = id
    end
    redis.call('HSET', job_key(id), 'payload', payload, 'state', state, 'attempts', 0,
      'max_attempts', max_attempts, 'created_ms', now, 'updated_ms', now,
      'run_at_ms', math.max(run_at, now), 'parent', parent, 'idem', idem)
    added = added + 1
    emit(id, state)
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
if #ready > 0 then
  redis.call('RPUSH', prefix .. 'ready', unpack(ready))
  -- As many wake-up tokens as jobs, capped like make_ready's: enough for every idle worker.
  local tokens = {}
  for i = 1, math.min(#ready, 64) do tokens[i] = '1' end
  redis.call('RPUSH', prefix .. 'notify', unpack(tokens))
  redis.call('LTRIM', prefix .. 'notify', -64, -1)
end
if added > 0 then redis.call('HINCRBY', prefix .. 'counts', 'enqueued', added) end
return out
