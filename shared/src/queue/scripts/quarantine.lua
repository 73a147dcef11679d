-- A claimed job whose payload does not decode goes to the dead-letter set with the decode
-- error; the worker goes on. ARGV[6] = id, ARGV[7] = token, ARGV[8] = error_json.
local id = ARGV[6]
local key = job_key(id)
if redis.call('HGET', key, 'token') ~= ARGV[7] then return {'stale'} end
redis.call('ZREM', prefix .. 'leased', id)
return {'dead', unpack(to_dead(id, ARGV[8]))}
