-- Moves jobs whose code deadline passed from awaiting_code to expired. Safe to run in every
-- worker at once: each job is moved by whichever call sees it first. ARGV[6] = retention_secs.
-- Returns the number expired.
local due = redis.call('ZRANGEBYSCORE', prefix .. 'awaiting', '-inf', now, 'LIMIT', 0, 500)
local n = 0
for _, id in ipairs(due) do
  redis.call('ZREM', prefix .. 'awaiting', id)
  local key = job_key(id)
  if redis.call('HGET', key, 'state') == 'awaiting_code' then
    redis.call('HSET', key, 'state', 'expired', 'updated_ms', now, 'finished_ms', now)
    redis.call('HDEL', key, 'code')
    redis.call('EXPIRE', key, tonumber(ARGV[6]))
    redis.call('HINCRBY', prefix .. 'counts', 'expired', 1)
    emit(id, 'expired')
    n = n + 1
  end
end
return n
