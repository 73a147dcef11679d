-- Enqueues one or more jobs of one lane and source atomically. ARGV[5] = number of jobs,
-- ARGV[6] = the lane (`live` or `bulk`), ARGV[7] = the source, then 7 values per job:
--   id, payload, max_attempts, run_at_ms (0 = now), parent id ('' = none),
--   idempotency key ('' = none; already hashed by the caller),
--   payload digests (keyed, from the caller, comma-separated: one per configured encryption
--   key, the sealing key's first; '' without an idempotency key)
-- Returns, per job, three values: the id that now stands for it; 0 when new, 1 when the key
-- was used before for the same payload (then the FIRST job's id), 2 when it was used for
-- another payload (the first job's id; nothing is written for this job); and on a 2 the
-- first job's state, else ''.
--
-- An idempotency key's value is `<first job id>|<payload digest>`. A value without a digest
-- (written before digests) matches any payload, as keys did then.
--
-- Bulk enqueue is the hot path of a backfill, so whatever can be is done once per call,
-- with one variadic command, instead of once per job:
-- * idempotency keys: one MSETNX claims them all when none is taken yet (a fresh backfill);
--   otherwise (a rerun, or a key twice in one call) one SET NX GET each;
-- * a job due now with no parent gets no hash of its own yet: its payload and metadata go
--   into the queue's `pending` hash, all in one HSET, and fetch builds the job's record when
--   it first claims it (fetch.lua; the entry's format is pending_record in common.lua);
-- * one RPUSH of the ready ids (onto the lane and source's list), one counter update, one
--   wake-up of idle workers.
-- Scheduled jobs and jobs with a parent are written in full at once: they are not the bulk
-- case, and other scripts look them up by their record.
local n = tonumber(ARGV[5])
local lane = ARGV[6]
local source = ARGV[7]
local per_job = 7

check_ready_keys()
check_queue_keys('pending', 'scheduled', 'waiting')

-- Claims idempotency key `idem` for `id`; returns who holds it when someone does. A key of
-- the wrong type (poison) is moved aside and recorded, then claimed afresh.
local function claim_key(idem, value)
  local key = prefix .. 'idem:' .. idem
  local holder = redis.pcall('SET', key, value, 'NX', 'GET')
  if type(holder) == 'table' and holder.err then
    local found = redis.call('TYPE', key)['ok']
    local to = move_aside(key)
    local pid = id_prefix .. '_POISON' .. sequence()
    redis.call('HSET', job_key(pid), 'payload', '', 'attempts', 0, 'max_attempts', 0,
      'created_ms', now_text, 'poison_key', to)
    to_dead(pid, malformed('MalformedKey', 'key ' .. key .. ' was a ' .. found ..
      ', not a string; moved to ' .. to))
    holder = redis.call('SET', key, value, 'NX', 'GET')
  end
  return holder
end

local function first_digest(digests)
  local comma = string.find(digests, ',', 1, true)
  if comma then return string.sub(digests, 1, comma - 1) end
  return digests
end

local idem_pairs = {}
local seen = {}
local repeated = false
for i = 0, n - 1 do
  local base = 8 + i * per_job
  local idem = ARGV[base + 5]
  if idem ~= '' then
    if seen[idem] then repeated = true end
    seen[idem] = true
    idem_pairs[#idem_pairs + 1] = prefix .. 'idem:' .. idem
    idem_pairs[#idem_pairs + 1] = ARGV[base] .. '|' .. first_digest(ARGV[base + 6])
  end
end
local all_fresh = #idem_pairs == 0
  or (not repeated and redis.call('MSETNX', unpack(idem_pairs)) == 1)

local out = {}
local scheduled_any = false
local ready = {}
local pending = {}
local added = 0
-- States of the jobs this call writes: their records and pending entries are written at
-- the end, so job_state cannot see them yet.
local written = {}
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
  local digest = first_digest(digests)
  local existing = false
  if idem ~= '' and not all_fresh then
    -- SET NX GET: claims the key, or returns who holds it, in one command.
    existing = claim_key(idem, id .. '|' .. digest)
  end
  if existing then
    local bar = string.find(existing, '|', 1, true)
    local first = bar and string.sub(existing, 1, bar - 1) or existing
    local stored = bar and string.sub(existing, bar + 1) or ''
    out[#out + 1] = first
    if stored == '' or string.find(',' .. digests .. ',', ',' .. stored .. ',', 1, true) then
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
