-- Claims up to ARGV[6] due jobs and gives each a lease until now + ARGV[7] ms.
-- ARGV[8] = a token prefix unique to this claim; each job's lease token is prefix:i.
-- Before claiming, it promotes due scheduled jobs and takes back jobs whose lease expired
-- (recovery is keyed on jobs, whoever held them). Every range is bounded by LIMIT.
-- Returns {wait_ms, n, then 9 values per job:
--   id, payload, attempts, max_attempts, token, uncertain, phase, code, code_failures}
-- where wait_ms is how long the caller may sleep before something here falls due (at most
-- a second), measured on Redis's clock, so a caller's own clock never enters it.
-- A record that cannot be used is dead-lettered here with its reason (common.lua); the
-- other jobs of the batch are claimed as usual.
local batch = tonumber(ARGV[6])
local lease_ms = tonumber(ARGV[7])
local lease_until = string.format('%d', now + lease_ms)
local token_prefix = ARGV[8]

check_queue_keys('ready', 'notify', 'pending', 'scheduled', 'leased')

-- 1. Scheduled jobs that are due join the ready list.
local due = redis.call('ZRANGEBYSCORE', prefix .. 'scheduled', '-inf', now_text, 'LIMIT', '0', '1000')
for _, id in ipairs(due) do
  redis.call('ZREM', prefix .. 'scheduled', id)
  local f = read_job(id, 'state')
  if not f then
    dead_wrong_type(id, 'scheduled set')
  elseif not f[1] then
    dead_no_record(id, 'scheduled set')
  elseif f[1] == 'retry_scheduled' or f[1] == 'scheduled' then
    redis.call('HSET', job_key(id), 'state', 'queued', 'updated_ms', now_text)
    make_ready(id, false)
    emit(id, 'queued')
  end
end

-- 2. Expired leases: the holder died or hung. The attempt's outcome is unknown, so the
-- job is flagged uncertain (creates reconcile first) and goes to the front of the line.
local expired = redis.call('ZRANGEBYSCORE', prefix .. 'leased', '-inf', now_text, 'LIMIT', '0', '100')
for _, id in ipairs(expired) do
  redis.call('ZREM', prefix .. 'leased', id)
  redis.call('HINCRBY', prefix .. 'counts', 'leases_expired', 1)
  local f = read_job(id, 'state', 'attempts', 'max_attempts')
  if not f then
    dead_wrong_type(id, 'leased set')
  elseif not f[1] then
    dead_no_record(id, 'leased set')
  elseif f[1] == 'running' then
    local attempts, max_attempts = whole(f[2], 0), whole(f[3], 1)
    if not attempts then
      dead_bad_field(id, 'attempts', 'a whole number')
    elseif not max_attempts then
      dead_bad_field(id, 'max_attempts', 'a whole number')
    else
      local key = job_key(id)
      redis.call('HSET', key, 'uncertain', 1, 'token', '', 'updated_ms', now_text)
      if attempts >= max_attempts then
        to_dead(id, cjson.encode({class = 'lease_expired', code = 'LeaseExpired',
          message = 'lease expired on the last allowed attempt; attempts used up'}))
      else
        redis.call('HSET', key, 'state', 'queued')
        make_ready(id, true)
        emit(id, 'queued', 'reason', 'lease expired')
      end
    end
  end
end

-- 3. Claim. Most jobs are claimed for the first time after a bulk enqueue: their entries
-- come out of `pending` with one HMGET and one HDEL for the whole batch, and all leases go
-- into one ZADD; per job there is one HSET (the record) and the event.
local out = {}
local n = 0
local leases = {}
-- Leases a claimed job and adds it to the reply; `f` holds the record's fields read for a
-- job claimed from its record (uncertain, phase, code, code_failures), empty otherwise.
local function claimed(id, payload, attempts, max_attempts, token, f)
  leases[#leases + 1] = lease_until
  leases[#leases + 1] = id
  emit_untrimmed(id, 'running', 'attempt', attempts)
  n = n + 1
  out[#out + 1] = id
  out[#out + 1] = payload
  out[#out + 1] = attempts
  out[#out + 1] = max_attempts
  out[#out + 1] = token
  out[#out + 1] = f[5] or '0'
  out[#out + 1] = f[6] or ''
  out[#out + 1] = f[7] or ''
  out[#out + 1] = f[8] or '0'
end
local ids = redis.call('LPOP', prefix .. 'ready', batch)
if ids then
  local entries = redis.call('HMGET', prefix .. 'pending', unpack(ids))
  local taken = {}
  local seen = {}
  for i, id in ipairs(ids) do
    local key = job_key(id)
    local token = token_prefix .. ':' .. i
    -- (`seen`: an id listed twice in one batch must not be claimed twice from its entry.)
    if entries[i] and not seen[id] then
      seen[id] = true
      local p = parse_pending(entries[i])
      taken[#taken + 1] = id
      redis.call('HSET', key, 'payload', p[1], 'state', 'running', 'attempts', '1',
        'max_attempts', p[2], 'created_ms', p[3], 'updated_ms', now_text, 'run_at_ms', p[3],
        'parent', '', 'idem', p[4], 'token', token, 'started_ms', now_text)
      claimed(id, p[1], '1', p[2], token, {})
    else
      local f = read_job(id, 'state', 'payload', 'attempts', 'max_attempts',
        'uncertain', 'phase', 'code', 'code_failures')
      if not f then
        dead_wrong_type(id, 'ready list')
      elseif not f[1] then
        dead_no_record(id, 'ready list')
      elseif f[1] == 'queued' then
        local attempts = whole(f[3], 0)
        if not attempts then
          dead_bad_field(id, 'attempts', 'a whole number')
        elseif not whole(f[4], nil) then
          dead_bad_field(id, 'max_attempts', 'a whole number')
        else
          attempts = string.format('%d', attempts + 1)
          redis.call('HSET', key, 'state', 'running', 'attempts', attempts, 'token', token,
            'started_ms', now_text, 'updated_ms', now_text)
          claimed(id, f[2] or '', attempts, f[4], token, f)
        end
      end
      -- Any other state: a stale ready entry for a job that has moved on; drop it.
    end
  end
  if #taken > 0 then redis.call('HDEL', prefix .. 'pending', unpack(taken)) end
  if #leases > 0 then redis.call('ZADD', prefix .. 'leased', unpack(leases)) end
end
if n > 0 then trim_events() end

-- How long the caller may sleep even if nobody wakes it.
local wait = 1000
local s = redis.call('ZRANGE', prefix .. 'scheduled', 0, 0, 'WITHSCORES')
if s[2] then wait = math.min(wait, tonumber(s[2]) - now) end
local l = redis.call('ZRANGE', prefix .. 'leased', 0, 0, 'WITHSCORES')
if l[2] then wait = math.min(wait, tonumber(l[2]) - now) end
if wait < 0 then wait = 0 end

local head = {wait, n}
for _, v in ipairs(out) do head[#head + 1] = v end
return head
