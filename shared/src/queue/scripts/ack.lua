-- Records the outcome of one attempt that did not succeed (successes go through
-- ack_succeeded.lua), checked against the lease token: a worker whose lease expired (and
-- whose job was handed to someone else) cannot overwrite the outcome.
-- ARGV[6] = id, ARGV[7] = token, ARGV[8] = outcome, then outcome arguments:
--   retry          delay_ms, error_json, uncertain (0/1)
--   defer          delay_ms, error_json          (throttled: gives the attempt back)
--   dead           error_json
--   await_code     deadline_ms, masked_phone     (phase 1 done: gives the attempt back)
--   code_rejected  deadline_ms, max_code_failures, error_json
--   release        (shutdown: hand the job straight back, attempt given back, uncertain)
-- Returns {status, dependent ids...}; dependents are returned when the job died, so the
-- caller can fail them in their own queues.
local id = ARGV[6]
local token = ARGV[7]
local outcome = ARGV[8]
local key = job_key(id)

local current = redis.call('HGET', key, 'token')
if current ~= token or token == '' then return {'stale'} end
redis.call('ZREM', prefix .. 'leased', id)

local function with(status, deps)
  local out = {status}
  for _, d in ipairs(deps or {}) do out[#out + 1] = d end
  return out
end

redis.call('HSET', key, 'token', '', 'updated_ms', now_text)
if outcome == 'retry' then
  local f = redis.call('HMGET', key, 'attempts', 'max_attempts')
  redis.call('HSET', key, 'error', ARGV[10])
  if ARGV[11] == '1' then redis.call('HSET', key, 'uncertain', 1) end
  if tonumber(f[1]) >= tonumber(f[2]) then
    local err = cjson.decode(ARGV[10])
    err.message = 'attempts used up (' .. f[1] .. '); last error: ' .. (err.message or '')
    return with('dead', to_dead(id, cjson.encode(err)))
  end
  local run_at = now + tonumber(ARGV[9])
  redis.call('HSET', key, 'state', 'retry_scheduled', 'run_at_ms', run_at)
  redis.call('ZADD', prefix .. 'scheduled', run_at, id)
  emit(id, 'retry_scheduled', 'error', ARGV[10])
  return {'retry'}
elseif outcome == 'defer' then
  local run_at = now + tonumber(ARGV[9])
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HINCRBY', key, 'throttles', 1)
  redis.call('HSET', key, 'state', 'retry_scheduled', 'run_at_ms', run_at, 'error', ARGV[10])
  redis.call('ZADD', prefix .. 'scheduled', run_at, id)
  emit(id, 'retry_scheduled', 'error', ARGV[10])
  return {'deferred'}
elseif outcome == 'dead' then
  return with('dead', to_dead(id, ARGV[9]))
elseif outcome == 'await_code' then
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HSET', key, 'state', 'awaiting_code', 'phase', 'verify', 'deadline_ms', ARGV[9])
  redis.call('HDEL', key, 'code')
  redis.call('ZADD', prefix .. 'awaiting', tonumber(ARGV[9]), id)
  emit(id, 'awaiting_code', 'phone', ARGV[10])
  return {'awaiting_code'}
elseif outcome == 'code_rejected' then
  redis.call('HINCRBY', key, 'attempts', -1)
  local failures = redis.call('HINCRBY', key, 'code_failures', 1)
  redis.call('HSET', key, 'error', ARGV[11])
  redis.call('HDEL', key, 'code')
  if failures >= tonumber(ARGV[10]) then
    local err = cjson.decode(ARGV[11])
    err.message = 'verify code rejected ' .. failures .. ' times: ' .. (err.message or '')
    return with('dead', to_dead(id, cjson.encode(err)))
  end
  redis.call('HSET', key, 'state', 'awaiting_code', 'deadline_ms', ARGV[9])
  redis.call('ZADD', prefix .. 'awaiting', tonumber(ARGV[9]), id)
  emit(id, 'awaiting_code', 'reason', 'code rejected')
  return {'awaiting_code'}
elseif outcome == 'release' then
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HSET', key, 'state', 'queued', 'uncertain', 1)
  make_ready(id, true)
  emit(id, 'queued', 'reason', 'handed back at shutdown')
  return {'released'}
end
return redis.error_reply('unknown outcome ' .. outcome)
