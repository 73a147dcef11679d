-- Claims up to ARGV[6] due jobs and gives each a lease until now + ARGV[7] ms.
-- ARGV[8] = a token prefix unique to this claim; each job's lease token is prefix:i.
-- Before claiming, it promotes due scheduled jobs and takes back jobs whose lease expired
-- (recovery is keyed on jobs, whoever held them). Every range is bounded by LIMIT.
-- Returns {next_wake_ms, n, then 9 values per job:
--   id, payload, attempts, max_attempts, token, uncertain, phase, code, code_failures}
local batch = tonumber(ARGV[6])
local lease_ms = tonumber(ARGV[7])
local token_prefix = ARGV[8]

-- 1. Scheduled jobs that are due join the ready list.
local due = redis.call('ZRANGEBYSCORE', prefix .. 'scheduled', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', prefix .. 'scheduled', id)
  local state = redis.call('HGET', job_key(id), 'state')
  if state == 'retry_scheduled' or state == 'scheduled' then
    redis.call('HSET', job_key(id), 'state', 'queued', 'updated_ms', now)
    make_ready(id, false)
    emit(id, 'queued')
  end
end

-- 2. Expired leases: the holder died or hung. The attempt's outcome is unknown, so the
-- job is flagged uncertain (creates reconcile first) and goes to the front of the line.
local expired = redis.call('ZRANGEBYSCORE', prefix .. 'leased', '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  redis.call('ZREM', prefix .. 'leased', id)
  redis.call('HINCRBY', prefix .. 'counts', 'leases_expired', 1)
  local key = job_key(id)
  local f = redis.call('HMGET', key, 'state', 'attempts', 'max_attempts')
  if f[1] == 'running' then
    redis.call('HSET', key, 'uncertain', 1, 'token', '', 'updated_ms', now)
    if tonumber(f[2]) >= tonumber(f[3]) then
      to_dead(id, cjson.encode({class = 'transient', code = 'LeaseExpired',
        message = 'lease expired on the last allowed attempt; attempts used up'}))
    else
      redis.call('HSET', key, 'state', 'queued')
      make_ready(id, true)
      emit(id, 'queued', 'reason', 'lease expired')
    end
  end
end

-- 3. Claim.
local out = {}
local n = 0
local ids = redis.call('LPOP', prefix .. 'ready', batch)
if ids then
  for i, id in ipairs(ids) do
    local key = job_key(id)
    local f = redis.call('HMGET', key, 'state', 'payload', 'attempts', 'max_attempts',
      'uncertain', 'phase', 'code', 'code_failures')
    if not f[1] then
      -- An id with no record behind it: quarantine a record of it so an operator sees it.
      redis.call('HSET', key, 'payload', '', 'attempts', 0, 'max_attempts', 0,
        'created_ms', now)
      to_dead(id, cjson.encode({class = 'undecodable', code = 'NoJobRecord',
        message = 'the ready list named a job that has no record'}))
    elseif f[1] == 'queued' then
      local token = token_prefix .. ':' .. i
      local attempts = redis.call('HINCRBY', key, 'attempts', 1)
      redis.call('HSET', key, 'state', 'running', 'token', token, 'started_ms', now,
        'updated_ms', now)
      redis.call('ZADD', prefix .. 'leased', now + lease_ms, id)
      emit(id, 'running', 'attempt', attempts)
      n = n + 1
      out[#out + 1] = id
      out[#out + 1] = f[2] or ''
      out[#out + 1] = attempts
      out[#out + 1] = f[4] or '0'
      out[#out + 1] = token
      out[#out + 1] = f[5] or '0'
      out[#out + 1] = f[6] or ''
      out[#out + 1] = f[7] or ''
      out[#out + 1] = f[8] or '0'
    end
    -- Any other state: a stale ready entry for a job that has moved on; drop it.
  end
end

-- When the worker should look again even if nobody wakes it.
local next_wake = now + 1000
local s = redis.call('ZRANGE', prefix .. 'scheduled', 0, 0, 'WITHSCORES')
if s[2] and tonumber(s[2]) < next_wake then next_wake = tonumber(s[2]) end
local l = redis.call('ZRANGE', prefix .. 'leased', 0, 0, 'WITHSCORES')
if l[2] and tonumber(l[2]) < next_wake then next_wake = tonumber(l[2]) end

local head = {next_wake, n}
for _, v in ipairs(out) do head[#head + 1] = v end
return head
