-- Hands a verify code to a job awaiting one and puts it back in the queue, at most once:
-- a second supply, or a supply after the deadline, finds another state and changes nothing.
-- ARGV[6] = id, ARGV[7] = the encrypted code. Returns {'ok'} or {'wrong_state', state}.
local id = ARGV[6]
local key = job_key(id)
local f = redis.call('HMGET', key, 'state', 'deadline_ms')
if not f[1] then return {'wrong_state', job_state(id) or 'missing'} end
if f[1] ~= 'awaiting_code' then return {'wrong_state', f[1]} end
if tonumber(f[2] or '0') < now then
  redis.call('ZREM', prefix .. 'awaiting', id)
  redis.call('HSET', key, 'state', 'expired', 'updated_ms', now)
  redis.call('HINCRBY', prefix .. 'counts', 'expired', 1)
  emit(id, 'expired')
  return {'wrong_state', 'expired'}
end
redis.call('ZREM', prefix .. 'awaiting', id)
redis.call('HSET', key, 'state', 'queued', 'code', ARGV[7], 'updated_ms', now)
make_ready(id, false)
emit(id, 'queued', 'reason', 'code supplied')
return {'ok'}
