-- A job's pending entry and the state changes several scripts share (cancel, expire, build
-- a record), for every queue script: prepended after common.lua and idempotency.lua (see
-- scripts.rs). No keys or arguments of its own.

-- A job enqueued straight onto the ready list has no record (hash) yet: its payload and
-- metadata wait in the queue's `pending` hash, field = id, value =
-- "max_attempts|created_ms|" then `#` and the idempotency key's hash (16 bytes), or `-`
-- without one, then the payload (sealed; binary). Entries written before hold
-- "max_attempts|created_ms|<hash in hex>|payload". Why, and who reads it: queue/pending.rs.
local function pending_record(max_attempts, created_ms, idem, payload)
  if idem == '' then return max_attempts .. '|' .. created_ms .. '|-' .. payload end
  return max_attempts .. '|' .. created_ms .. '|#' .. idem .. payload
end

-- Splits a pending entry into {payload, max_attempts, created_ms, idem}. A malformed entry
-- comes back with an empty payload, which the worker quarantines as undecodable.
local function parse_pending(rec)
  local a = string.find(rec, '|', 1, true)
  local b = a and string.find(rec, '|', a + 1, true)
  if not b then return {'', '1', now_text, ''} end
  local max_attempts = string.sub(rec, 1, a - 1)
  local created = string.sub(rec, a + 1, b - 1)
  -- Digits only (our enqueue writes no other form): a pattern costs less than tonumber.
  if not string.find(max_attempts, '^%d+$') or not string.find(created, '^%d+$') then
    return {'', '1', now_text, ''}
  end
  local flag = string.byte(rec, b + 1)
  if flag == 45 then return {string.sub(rec, b + 2), max_attempts, created, ''} end
  if flag == 35 and #rec >= b + 17 then
    return {string.sub(rec, b + 18), max_attempts, created, string.sub(rec, b + 2, b + 17)}
  end
  local c = string.find(rec, '|', b + 1, true)
  if not c then return {'', '1', now_text, ''} end
  return {string.sub(rec, c + 1), max_attempts, created, string.sub(rec, b + 1, c - 1)}
end

-- Ends a job that has not started because its batch was cancelled: state `cancelled`,
-- kept for the retention like any finished job, and its idempotency key released so the
-- work can be enqueued again. `entry` is its pending entry when it has no record yet.
-- Returns its dependents, which the caller cancels too.
local function cancel_job(id, entry, source, retention)
  local key = job_key(id)
  local idem
  if entry then
    local p = parse_pending(entry)
    redis.call('HDEL', prefix .. 'pending', id)
    redis.call('HSET', key, 'payload', p[1], 'attempts', 0, 'max_attempts', p[2],
      'created_ms', p[3], 'idem', p[4], 'lane', 'bulk', 'source', source)
    idem = p[4]
  else
    idem = redis.call('HGET', key, 'idem')
  end
  redis.call('HSET', key, 'state', 'cancelled', 'updated_ms', now_text, 'finished_ms', now_text)
  redis.call('ZREM', prefix .. 'scheduled', id)
  redis.call('ZREM', prefix .. 'waiting', id)
  idem_release(idem, id)
  redis.call('EXPIRE', key, retention)
  redis.call('HINCRBY', prefix .. 'counts', 'cancelled', 1)
  count_source(source, 'cancelled')
  emit_untrimmed(id, 'cancelled')
  local deps_key = prefix .. 'deps:' .. id
  local deps = redis.pcall('SMEMBERS', deps_key)
  redis.call('DEL', deps_key)
  if deps.err then return {} end
  return deps
end

-- Builds the record of a pending job (still queued) and removes its entry, for scripts that
-- must write to the record before any worker claimed the job. False when it had none.
local function materialize_pending(id)
  local rec = redis.call('HGET', prefix .. 'pending', id)
  if not rec then return false end
  local p = parse_pending(rec)
  redis.call('HSET', job_key(id), 'payload', p[1], 'state', 'queued', 'attempts', 0,
    'max_attempts', p[2], 'created_ms', p[3], 'updated_ms', p[3], 'run_at_ms', p[3],
    'parent', '', 'idem', p[4])
  redis.call('HDEL', prefix .. 'pending', id)
  return true
end

-- A job's state, also for a job still pending (queued, no record yet): 'missing' when there
-- is no such job, 'malformed' when its record is not a hash.
local function job_state(id)
  local f = read_job(id, 'state')
  if not f then return 'malformed' end
  if f[1] then return f[1] end
  if redis.call('HEXISTS', prefix .. 'pending', id) == 1 then return 'queued' end
  return 'missing'
end

-- Moves a job whose code deadline passed to `expired`: kept for the retention like any
-- finished job, and so is its idempotency key. Returns its dependents, which the caller
-- must fail.
local function to_expired(id, retention)
  local key = job_key(id)
  count_source(redis.call('HGET', key, 'source'), 'expired')
  redis.call('ZREM', prefix .. 'awaiting', id)
  redis.call('HSET', key, 'state', 'expired', 'updated_ms', now_text, 'finished_ms', now_text)
  redis.call('HDEL', key, 'code', 'early_code', 'early_deadline_ms')
  redis.call('EXPIRE', key, retention)
  local idem = redis.call('HGET', key, 'idem')
  idem_expire(idem, retention)
  redis.call('HINCRBY', prefix .. 'counts', 'expired', 1)
  emit(id, 'expired')
  local deps_key = prefix .. 'deps:' .. id
  local deps = redis.pcall('SMEMBERS', deps_key)
  redis.call('DEL', deps_key)
  if deps.err then return {} end
  return deps
end
