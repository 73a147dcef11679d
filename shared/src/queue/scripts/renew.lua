-- Extends a running job's lease, only while the caller still holds it (token check).
-- ARGV[6] = id, ARGV[7] = token, ARGV[8] = lease_ms. Returns 1 renewed, 0 lease lost.
local id = ARGV[6]
local token = ARGV[7]
if token == '' or redis.call('HGET', job_key(id), 'token') ~= token then return 0 end
redis.call('ZADD', prefix .. 'leased', 'XX', now + tonumber(ARGV[8]), id)
return 1
