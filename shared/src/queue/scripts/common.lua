-- Shared helpers, prepended to every queue script by queue/scripts.rs.
-- Every script gets ARGV[1] = the queue's key prefix `onboard:{<kind>}:`, ARGV[2] = the
-- events stream key, ARGV[3] = the stream's approximate max length, ARGV[4] = now (ms),
-- ARGV[5] = the kind. All keys a script touches share the prefix's hash tag, so each script
-- runs in one Redis Cluster slot (the events key too, in cluster mode).
local prefix = ARGV[1]
local events_key = ARGV[2]
local events_maxlen = ARGV[3]
local now = tonumber(ARGV[4])
local kind = ARGV[5]

local function job_key(id) return prefix .. 'job:' .. id end

local function emit(id, state, extra_field, extra_value)
  if extra_field then
    redis.call('XADD', events_key, 'MAXLEN', '~', events_maxlen, '*',
      'job_id', id, 'kind', kind, 'state', state, 'at_ms', now, extra_field, extra_value)
  else
    redis.call('XADD', events_key, 'MAXLEN', '~', events_maxlen, '*',
      'job_id', id, 'kind', kind, 'state', state, 'at_ms', now)
  end
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
  redis.call('HSET', key, 'state', 'dead', 'error', error_json, 'finished_ms', now,
    'updated_ms', now, 'token', '')
  redis.call('ZADD', prefix .. 'dead', now, id)
  redis.call('HINCRBY', prefix .. 'counts', 'dead', 1)
  emit(id, 'dead', 'error', error_json)
  local deps_key = prefix .. 'deps:' .. id
  local deps = redis.call('SMEMBERS', deps_key)
  redis.call('DEL', deps_key)
  return deps
end
