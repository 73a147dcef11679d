-- Extends a running job's lease, only while the caller still holds it (token check).
-- ARGV[5] = id, ARGV[6] = token, ARGV[7] = lease_ms. Returns 1 renewed, 0 lease lost (also
-- when the record cannot be read: the lease then runs out and fetch deals with the record).
local id = ARGV[5]
local token = ARGV[6]
local f = read_job(id, 'token')
if token == '' or not f or f[1] ~= token then return 0 end
check_queue_keys('leased')
redis.call('ZADD', prefix .. 'leased', 'XX', string.format('%d', now + tonumber(ARGV[7])), id)
return 1
