-- Deletes a dead job for good (record and idempotency key). ARGV[6] = id.
-- Returns {'ok'} or {'wrong_state', state} (state 'missing' when there is no such job).
local id = ARGV[6]
local key = job_key(id)
local f = redis.call('HMGET', key, 'state', 'idem')
if not f[1] then return {'wrong_state', job_state(id) or 'missing'} end
if f[1] ~= 'dead' then return {'wrong_state', f[1]} end
redis.call('ZREM', prefix .. 'dead', id)
redis.call('DEL', key)
if f[2] and f[2] ~= '' then redis.call('DEL', prefix .. 'idem:' .. f[2]) end
emit(id, 'purged')
return {'ok'}
