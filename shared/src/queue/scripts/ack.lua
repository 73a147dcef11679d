-- Records the outcome of one attempt that did not succeed (successes go through
-- ack_succeeded.lua), checked against the lease token: a worker whose lease expired (and
-- whose job was handed to someone else) cannot overwrite the outcome.
-- ARGV[5] = id, ARGV[6] = token, ARGV[7] = outcome, then outcome arguments:
--   retry          delay_ms, error_json, uncertain (0/1)
--   defer          delay_ms, error_json          (throttled: gives the attempt back)
--   dead           error_json
--   await_code     code_lifetime_ms, masked_phone (phase 1 done: gives the attempt back)
--   code_rejected  code_lifetime_ms, max_code_failures, error_json
--   release        (shutdown while it ran: back to the queue, attempt given back, uncertain)
--   unstarted      (claimed but never started: back to the queue as it was)
-- Returns {status, dependent refs...}; dependents are returned when the job died, so the
-- caller can fail them in their own queues. A record that cannot be used is dead-lettered.
local id = ARGV[5]
local token = ARGV[6]
local outcome = ARGV[7]
local key = job_key(id)

check_ready_keys()
check_queue_keys('scheduled', 'leased', 'awaiting')

local function with(status, deps)
  local out = {status}
  for _, d in ipairs(deps or {}) do out[#out + 1] = d end
  return out
end

local f = read_job(id, 'token', 'attempts', 'max_attempts', 'early_code', 'code_failures',
  'early_deadline_ms')
if not f then
  redis.call('ZREM', prefix .. 'leased', id)
  return with('dead', dead_wrong_type(id, 'an acknowledgement'))
end
if f[1] ~= token or token == '' then return {'stale'} end
local attempts, max_attempts = whole(f[2], 0), whole(f[3], 1)
redis.call('ZREM', prefix .. 'leased', id)
if not attempts then return with('dead', dead_bad_field(id, 'attempts', 'a whole number')) end
if not max_attempts then
  return with('dead', dead_bad_field(id, 'max_attempts', 'a whole number'))
end

-- Phase 1 is done and a code is waiting for the job to get there: resume at once.
local function await_code(lifetime_ms, reason_field, reason)
  local deadline = string.format('%d', now + tonumber(lifetime_ms))
  local early = f[4] and (whole(f[6], 0) or 0) >= now
  redis.call('HDEL', key, 'early_code', 'early_deadline_ms')
  if early then
    redis.call('HSET', key, 'state', 'queued', 'phase', 'verify', 'code', f[4],
      'deadline_ms', deadline)
    make_ready(id, false)
    emit(id, 'queued', 'reason', 'code supplied early')
    return {'awaiting_code'}
  end
  redis.call('HSET', key, 'state', 'awaiting_code', 'phase', 'verify', 'deadline_ms', deadline)
  redis.call('ZADD', prefix .. 'awaiting', deadline, id)
  emit(id, 'awaiting_code', reason_field, reason)
  return {'awaiting_code'}
end

redis.call('HSET', key, 'token', '', 'updated_ms', now_text)
if outcome == 'retry' then
  redis.call('HSET', key, 'error', ARGV[9])
  if ARGV[10] == '1' then redis.call('HSET', key, 'uncertain', 1) end
  if attempts >= max_attempts then
    local err = cjson.decode(ARGV[9])
    err.message = 'attempts used up (' .. attempts .. '); last error: ' .. (err.message or '')
    return with('dead', to_dead(id, cjson.encode(err)))
  end
  local run_at = string.format('%d', now + tonumber(ARGV[8]))
  redis.call('HSET', key, 'state', 'retry_scheduled', 'run_at_ms', run_at)
  redis.call('ZADD', prefix .. 'scheduled', run_at, id)
  emit(id, 'retry_scheduled', 'error', ARGV[9])
  -- An idle fetcher sleeping past the new due time learns of it now.
  wake()
  return {'retry'}
elseif outcome == 'defer' then
  local run_at = string.format('%d', now + tonumber(ARGV[8]))
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HINCRBY', key, 'throttles', 1)
  redis.call('HSET', key, 'state', 'retry_scheduled', 'run_at_ms', run_at, 'error', ARGV[9])
  redis.call('ZADD', prefix .. 'scheduled', run_at, id)
  emit(id, 'retry_scheduled', 'error', ARGV[9])
  wake()
  return {'deferred'}
elseif outcome == 'dead' then
  return with('dead', to_dead(id, ARGV[8]))
elseif outcome == 'await_code' then
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HDEL', key, 'code')
  return await_code(ARGV[8], 'phone', ARGV[9])
elseif outcome == 'code_rejected' then
  redis.call('HINCRBY', key, 'attempts', -1)
  local failures = (whole(f[5], 0) or 0) + 1
  redis.call('HSET', key, 'code_failures', string.format('%d', failures), 'error', ARGV[10])
  redis.call('HDEL', key, 'code')
  if failures >= tonumber(ARGV[9]) then
    local err = cjson.decode(ARGV[10])
    err.message = 'verify code rejected ' .. failures .. ' times: ' .. (err.message or '')
    return with('dead', to_dead(id, cjson.encode(err)))
  end
  return await_code(ARGV[8], 'reason', 'code rejected')
elseif outcome == 'release' then
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HSET', key, 'state', 'queued', 'uncertain', 1)
  make_ready(id, true)
  emit(id, 'queued', 'reason', 'handed back at shutdown')
  return {'released'}
elseif outcome == 'unstarted' then
  redis.call('HINCRBY', key, 'attempts', -1)
  redis.call('HSET', key, 'state', 'queued')
  make_ready(id, true)
  emit(id, 'queued', 'reason', 'handed back unstarted')
  return {'released'}
end
return redis.error_reply('unknown outcome ' .. outcome)
