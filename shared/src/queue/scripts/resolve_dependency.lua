-- Runs in the CHILD's queue once its parent ended: a waiting child becomes queued (parent
-- succeeded) or dead with "dependency failed" (parent failed). Idempotent.
-- ARGV[6] = child id, ARGV[7] = '1' parent succeeded / '0' failed, ARGV[8] = error_json.
-- Returns {'queued'}, {'dead'} or {'noop', state}.
local id = ARGV[6]
local key = job_key(id)
local state = redis.call('HGET', key, 'state')
if state ~= 'waiting' then return {'noop', state or 'missing'} end
redis.call('ZREM', prefix .. 'waiting', id)
if ARGV[7] == '1' then
  redis.call('HSET', key, 'state', 'queued', 'updated_ms', now)
  make_ready(id, false)
  emit(id, 'queued', 'reason', 'dependency succeeded')
  return {'queued'}
end
to_dead(id, ARGV[8])
return {'dead'}
