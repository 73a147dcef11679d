-- Enqueues one or more jobs of one lane and source atomically. ARGV[5] = number of jobs,
-- ARGV[6] = the lane (`live` or `bulk`), ARGV[7] = the source, then 7 values per job:
--   id, payload, max_attempts, run_at_ms (0 = now), parent id ('' = none),
--   idempotency key ('' = none; else its hash, 16 bytes, made by the caller),
--   payload digests (keyed, from the caller, 16 bytes each: one per configured encryption
--   key, the sealing key's first; '' without an idempotency key)
-- Returns, per job, three values: the id that now stands for it; 0 when new, 1 when the key
-- was used before for the same payload (then the FIRST job's id), 2 when it was used for
-- another payload (the first job's id; nothing is written for this job); and on a 2 the
-- first job's state, else ''.
--
-- An idempotency key is an entry of one of the queue's small `idem:<bucket>` hashes (see
-- idem_bucket in idempotency.lua): the first job's id and its payload digest; an entry whose job
-- no longer exists counts as absent. A value without a digest matches any payload.
--
-- Bulk enqueue is the hot path of a backfill, so whatever can be is done once per call,
-- with one variadic command, instead of once per job:
-- * a job due now with no parent gets no hash of its own yet: its payload and metadata go
--   into the queue's `pending` hash, all in one HSET, and fetch builds the job's record when
--   it first claims it (fetch.lua; the entry's format is pending_record in lifecycle.lua);
-- * one RPUSH of the ready ids (onto the lane and source's list), one counter update, one
--   wake-up of idle workers.
-- Each idempotency key is claimed with one HSETNX (its bucket is its own), and read back
-- only when taken.
-- Scheduled jobs and jobs with a parent are written in full at once: they are not the bulk
-- case, and other scripts look them up by their record.
local n = tonumber(ARGV[5])
local lane = ARGV[6]
local source = ARGV[7]
local per_job = 7

check_ready_keys()
check_queue_keys('pending', 'scheduled', 'waiting')
mark_new_idem_format()

-- States of the jobs this call writes: their records and pending entries are written at
-- the end, so job_state and idem_holder_lives cannot see them yet.
local written = {}

-- Claims idempotency key `idem` for `id` (`value`); returns who holds it when someone does.
-- A bucket of the wrong type (poison) is moved aside and recorded, then claimed afresh.
local function claim_key(idem, value)
  local key = idem_bucket(idem)
  local ok = redis.pcall('HSETNX', key, idem, value)
  if type(ok) == 'table' then
    local found = redis.call('TYPE', key)['ok']
    local to = move_aside(key)
    local pid = id_prefix .. '_POISON' .. sequence()
    redis.call('HSET', job_key(pid), 'payload', '', 'attempts', 0, 'max_attempts', 0,
      'created_ms', now_text, 'poison_key', to)
    to_dead(pid, malformed('MalformedKey', 'key ' .. key .. ' was a ' .. found ..
      ', not a hash; moved to ' .. to))
    ok = redis.call('HSETNX', key, idem, value)
  end
  if ok == 1 then
    -- New here; a key written before the buckets may hold it all the same.
    local older = older_idem_value(idem)
    if not older then return false end
    redis.call('HDEL', key, idem)
    return older
  end
  local holder = redis.call('HGET', key, idem)
  local first = idem_parse(holder)
  if not written[first] and not idem_holder_lives(first) then
    -- Its job's record has expired with the retention: the key is free.
    redis.call('HSET', key, idem, value)
    return false
  end
  return holder
end

-- Whether `stored` (a digest) is one of `digests` (16 bytes each); no digest matches all.
local function same_payload(stored, digests)
  if stored == '' then return true end
  for at = 1, #digests, 16 do
    if string.sub(digests, at, at + 15) == stored then return true end
  end
  return false
end

local out = {}
local scheduled_any = false
local ready = {}
local pending = {}
local added = 0
for i = 0, n - 1 do
  local base = 8 + i * per_job
  local id = ARGV[base]
  local payload = ARGV[base + 1]
  local max_attempts = ARGV[base + 2]
  local run_at = tonumber(ARGV[base + 3])
  local parent = ARGV[base + 4]
  local idem = ARGV[base + 5]
  -- The payload's digests under every configured key, the sealing key's first: a stored
  -- digest made with any of them is the same payload (keys may be rotating).
  local digests = ARGV[base + 6]
  local existing = false
  if idem ~= '' then
    existing = claim_key(idem, idem_value(id, string.sub(digests, 1, 16)))
  end
  if existing then
    local first, stored = idem_parse(existing)
    out[#out + 1] = first
    if same_payload(stored, digests) then
      out[#out + 1] = 1
      out[#out + 1] = ''
    else
      out[#out + 1] = 2
      out[#out + 1] = written[first] or job_state(first) or 'missing'
    end
  else
    if parent == '' and run_at <= now then
      pending[#pending + 1] = id
      pending[#pending + 1] = pending_record(max_attempts, now_text, idem, payload)
      ready[#ready + 1] = id
      written[id] = 'queued'
      stream_event(id, 'queued')
    else
      local state
      if parent ~= '' then
        state = 'waiting'
        redis.call('ZADD', prefix .. 'waiting', now_text, id)
      else
        state = 'scheduled'
        scheduled_any = true
        redis.call('ZADD', prefix .. 'scheduled', run_at, id)
      end
      redis.call('HSET', job_key(id), 'payload', payload, 'state', state, 'attempts', 0,
        'max_attempts', max_attempts, 'created_ms', now_text, 'updated_ms', now_text,
        'run_at_ms', string.format('%d', math.max(run_at, now)), 'parent', parent, 'idem', idem,
        'lane', lane, 'source', source, 'history', history_line(state))
      written[id] = state
      stream_event(id, state)
    end
    added = added + 1
    out[#out + 1] = id
    out[#out + 1] = 0
    out[#out + 1] = ''
  end
end
if #ready > 0 then
  redis.call('HSET', prefix .. 'pending', unpack(pending))
  local list = ready_list(lane, source)
  local len = redis.pcall('RPUSH', list, unpack(ready))
  if type(len) == 'table' then
    set_aside(list, 'list')
    len = redis.call('RPUSH', list, unpack(ready))
  end
  if len == #ready then join_ring(lane, source) end
  -- As many wake-up tokens as jobs, capped like wake's: enough for every idle worker.
  local tokens = {}
  for i = 1, math.min(#ready, 64) do tokens[i] = '1' end
  redis.call('RPUSH', provider_prefix .. 'notify', unpack(tokens))
  redis.call('LTRIM', provider_prefix .. 'notify', -64, -1)
  -- Live jobs also wake a busy worker, which keeps a slot free for them (runtime/fetcher.rs).
  if lane == 'live' then
    local live = provider_prefix .. 'notify:live'
    if type(redis.pcall('RPUSH', live, unpack(tokens))) == 'table' then
      set_aside(live, 'list')
      redis.call('RPUSH', live, unpack(tokens))
    end
    redis.call('LTRIM', live, -64, -1)
  end
end
-- An idle fetcher sleeping past a new run-at time learns of it now.
if scheduled_any and #ready == 0 then wake() end
if added > 0 then
  redis.call('HINCRBY', prefix .. 'counts', 'enqueued', added)
  count_source(source, 'enqueued', added)
  trim_events()
end
return out
