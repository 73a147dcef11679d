-- Puts an expired or awaiting_code job back through phase 1 (a new code is texted).
-- ARGV[6] = id. Returns {'ok'} or {'wrong_state', state}.
local id = ARGV[6]
local key = job_key(id)
local state = redis.call('HGET', key, 'state')
if not state then return {'wrong_state', job_state(id) or 'missing'} end
if state ~= 'expired' and state ~= 'awaiting_code' then return {'wrong_state', state} end
redis.call('ZREM', prefix .. 'awaiting', id)
redis.call('HSET', key, 'state', 'queued', 'phase', 'send', 'updated_ms', now)
redis.call('HDEL', key, 'code')
redis.call('PERSIST', key)
make_ready(id, false)
emit(id, 'queued', 'reason', 'resend code')
return {'ok'}
