-- Brings a dead job back: attempts reset, back to the queue (or to waiting, when it has a
-- parent, so the dependency is checked again). ARGV[5] = id.
-- Returns {'queued'}, {'waiting', parent} or {'wrong_state', state} ('missing': no such
-- job; 'undecodable': a quarantined or malformed job, which can only be purged).
local id = ARGV[5]
local key = job_key(id)
check_ready_keys()
check_queue_keys('waiting')
local f = read_job(id, 'state', 'parent', 'payload', 'poison_key', 'error')
if not f then return {'wrong_state', 'malformed'} end
if not f[1] then return {'wrong_state', job_state(id)} end
if f[1] ~= 'dead' then return {'wrong_state', f[1]} end
if not f[3] or f[3] == '' or f[4] then return {'wrong_state', 'undecodable'} end
redis.call('ZREM', prefix .. 'dead', id)
unindex_dead(id, f[5])
redis.call('HSET', key, 'attempts', 0, 'code_failures', 0, 'updated_ms', now_text, 'phase', '')
redis.call('HDEL', key, 'finished_ms')
redis.call('PERSIST', key)
if f[2] and f[2] ~= '' then
  redis.call('HSET', key, 'state', 'waiting')
  redis.call('ZADD', prefix .. 'waiting', now_text, id)
  emit(id, 'waiting', 'reason', 'dead letter retried')
  return {'waiting', f[2]}
end
redis.call('HSET', key, 'state', 'queued')
make_ready(id, false)
emit(id, 'queued', 'reason', 'dead letter retried')
return {'queued'}
