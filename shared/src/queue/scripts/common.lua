-- Shared helpers, prepended to every queue script by queue/scripts.rs.
-- Every script gets ARGV[1] = the queue's key prefix `onboard:{<kind>}:`, ARGV[2] = the
-- events stream key, ARGV[3] = the stream's approximate max length, ARGV[4] = now (ms),
-- ARGV[5] = the kind. All keys a script touches share the prefix's hash tag, so each script
-- runs in one Redis Cluster slot (the events key too, in cluster mode).
local prefix = ARGV[1]
local events_key = ARGV[2]
local events_maxlen = ARGV[3]
local now = tonumber(ARGV[4])
-- `now` as text, for redis.call: Redis 7.0 prints every Lua number handed to a command with
-- snprintf("%.17g"), which costs more than a small command itself. Hot paths pass strings.
local now_text = ARGV[4]
local kind = ARGV[5]

local function job_key(id) return prefix .. 'job:' .. id end

-- Appends a state change to the events stream. Scripts that write one event per job of a
-- batch (enqueue, fetch, ack_succeeded) call this and trim_events once at the end: MAXLEN
-- on every entry was a fifth of an entry's cost.
local function emit_untrimmed(id, state, extra_field, extra_value)
  if extra_field then
    redis.call('XADD', events_key, '*', 'job_id', id, 'kind', kind, 'state', state,
      'at_ms', now_text, extra_field, extra_value)
  else
    redis.call('XADD', events_key, '*', 'job_id', id, 'kind', kind, 'state', state,
      'at_ms', now_text)
  end
end

-- Keeps the events stream near its cap.
local function trim_events()
  redis.call('XTRIM', events_key, 'MAXLEN', '~', events_maxlen)
end

-- A state change of a single job: the event, then the trim.
local function emit(id, state, extra_field, extra_value)
  emit_untrimmed(id, state, extra_field, extra_value)
  trim_events()
end

local function make_ready(id, front)
  if front then
    redis.call('LPUSH', prefix .. 'ready', id)
  else
    redis.call('RPUSH', prefix .. 'ready', id)
  end
  -- Wake one idle worker blocked on the notify list; a short list is enough to wake all
  -- idle workers without letting tokens pile up.
  redis.call('RPUSH', prefix .. 'notify', '1')
  redis.call('LTRIM', prefix .. 'notify', -64, -1)
end

-- Moves a job to the dead-letter set with its error record (JSON text).
-- Returns the ids of jobs waiting on this one, which the caller must fail.
local function to_dead(id, error_json)
  local key = job_key(id)
  redis.call('HSET', key, 'state', 'dead', 'error', error_json, 'finished_ms', now_text,
    'updated_ms', now_text, 'token', '')
  redis.call('ZADD', prefix .. 'dead', now_text, id)
  redis.call('HINCRBY', prefix .. 'counts', 'dead', 1)
  emit(id, 'dead', 'error', error_json)
  local deps_key = prefix .. 'deps:' .. id
  local deps = redis.call('SMEMBERS', deps_key)
  redis.call('DEL', deps_key)
  return deps
end

-- A job enqueued straight onto the ready list has no record (hash) yet: its payload and
-- metadata wait in the queue's `pending` hash, field = id, value =
-- "max_attempts|created_ms|idempotency key|payload" (the payload last: it is binary).
-- Why, and who reads it: queue/pending.rs.
local function pending_record(max_attempts, created_ms, idem, payload)
  return max_attempts .. '|' .. created_ms .. '|' .. idem .. '|' .. payload
end

-- Splits a pending entry into {payload, max_attempts, created_ms, idem}. A malformed entry
-- comes back with an empty payload, which the worker quarantines as undecodable.
local function parse_pending(rec)
  local a = string.find(rec, '|', 1, true)
  local b = a and string.find(rec, '|', a + 1, true)
  local c = b and string.find(rec, '|', b + 1, true)
  if not c then return {'', '1', now_text, ''} end
  return {string.sub(rec, c + 1), string.sub(rec, 1, a - 1), string.sub(rec, a + 1, b - 1),
    string.sub(rec, b + 1, c - 1)}
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

-- A job's state, also for a job still pending (queued, no record yet); nil when unknown.
local function job_state(id)
  local state = redis.call('HGET', job_key(id), 'state')
  if state then return state end
  if redis.call('HEXISTS', prefix .. 'pending', id) == 1 then return 'queued' end
  return nil
end
