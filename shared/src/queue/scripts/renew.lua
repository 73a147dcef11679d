-- Extends a running job's lease, only while the caller still holds it (token check).
-- ARGV[6] = id, ARGV[7] = token, ARGV[8] = lease_ms. Returns 1 renewed, 0 lease lost (also
-- when the record cannot be read: the lease then runs out and fetch deals with the record).
local id = ARGV[6]
local token = ARGV[7]
local f = read_job(id, 'token')
if token == '' or not f or f[1] ~= token then return 0 end
check_queue_keys('leased')
redis.call('ZADD', prefix .. 'leased', 'XX', string.format('%d', now + tonumber(ARGV[8])), id)
return 1
