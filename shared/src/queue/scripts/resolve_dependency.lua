-- Runs in the CHILD's queue once its parent ended: a waiting child becomes queued (parent
-- succeeded; scheduled instead when its own run-at time is still ahead) or dead with
-- "dependency failed" (parent failed), or cancelled with its cancelled parent. Idempotent.
-- ARGV[5] = child id, ARGV[6] = '1' parent succeeded / '0' failed / 'c' cancelled,
-- ARGV[7] = error_json, ARGV[8] = retention of finished jobs (s).
-- Returns {'queued'}, {'scheduled'}, {'dead'}, {'cancelled', dependent refs...} or
-- {'noop', state}.
local id = ARGV[5]
local key = job_key(id)
check_ready_keys()
check_queue_keys('scheduled', 'waiting')
local f = read_job(id, 'state', 'run_at_ms', 'source')
if not f then
  redis.call('ZREM', prefix .. 'waiting', id)
  dead_wrong_type(id, 'a dependency resolution')
  return {'dead'}
end
if f[1] ~= 'waiting' then return {'noop', f[1] or 'missing'} end
redis.call('ZREM', prefix .. 'waiting', id)
if ARGV[6] == '1' then
  local run_at = whole(f[2], 0) or 0
  if run_at > now then
    redis.call('HSET', key, 'state', 'scheduled', 'updated_ms', now_text)
    redis.call('ZADD', prefix .. 'scheduled', f[2], id)
    emit(id, 'scheduled', 'reason', 'dependency succeeded')
    return {'scheduled'}
  end
  redis.call('HSET', key, 'state', 'queued', 'updated_ms', now_text)
  make_ready(id, false)
  emit(id, 'queued', 'reason', 'dependency succeeded')
  return {'queued'}
end
if ARGV[6] == 'c' then
  local out = {'cancelled'}
  for _, d in ipairs(cancel_job(id, nil, f[3], ARGV[8])) do out[#out + 1] = d end
  trim_events()
  return out
end
to_dead(id, ARGV[7])
return {'dead'}
