-- Hands a verify code to a create-account job and puts it back in the queue, at most once:
-- a second supply, or a supply after the deadline, finds another state and changes nothing.
-- A code supplied while phase 1 is still finishing (the job runs, the provider may already
-- have texted) is kept, encrypted, until phase 1 ends (ack.lua uses it then), for at most
-- the code's lifetime; a second such supply is refused.
-- ARGV[5] = id, ARGV[6] = the encrypted code, ARGV[7] = the code's lifetime (ms).
-- Returns {'ok'} or {'wrong_state', state} ('missing': no such job; 'expired': its deadline
-- passed, and the sweeper's expire_codes.lua moves it to expired).
local id = ARGV[5]
local key = job_key(id)
check_ready_keys()
check_queue_keys('awaiting')
local f = read_job(id, 'state', 'deadline_ms', 'phase', 'early_code')
if not f then return {'wrong_state', 'malformed'} end
if not f[1] then return {'wrong_state', job_state(id)} end
if f[1] == 'running' and f[3] ~= 'verify' then
  if f[4] then return {'wrong_state', 'running, with a code already waiting for it'} end
  redis.call('HSET', key, 'early_code', ARGV[6], 'early_deadline_ms',
    string.format('%d', now + tonumber(ARGV[7])))
  return {'ok'}
end
if f[1] ~= 'awaiting_code' then return {'wrong_state', f[1]} end
if (whole(f[2], 0) or 0) <= now then return {'wrong_state', 'expired'} end
redis.call('ZREM', prefix .. 'awaiting', id)
redis.call('HSET', key, 'state', 'queued', 'code', ARGV[6], 'updated_ms', now_text)
make_ready(id, false)
emit(id, 'queued', 'reason', 'code supplied')
return {'ok'}
