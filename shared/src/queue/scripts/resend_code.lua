-- Puts an expired or awaiting_code job back through phase 1 (a new code is texted).
-- ARGV[5] = id. Returns {'ok'} or {'wrong_state', state} ('missing': no such job).
local id = ARGV[5]
local key = job_key(id)
check_ready_keys()
check_queue_keys('awaiting')
local f = read_job(id, 'state')
if not f then return {'wrong_state', 'malformed'} end
local state = f[1]
if not state then return {'wrong_state', job_state(id)} end
if state ~= 'expired' and state ~= 'awaiting_code' then return {'wrong_state', state} end
redis.call('ZREM', prefix .. 'awaiting', id)
redis.call('HSET', key, 'state', 'queued', 'phase', 'send', 'updated_ms', now_text)
redis.call('HDEL', key, 'code', 'finished_ms')
redis.call('PERSIST', key)
local idem = redis.call('HGET', key, 'idem')
idem_expire(idem, nil)
make_ready(id, false)
emit(id, 'queued', 'reason', 'resend code')
return {'ok'}
