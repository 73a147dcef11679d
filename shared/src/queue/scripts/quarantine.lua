-- A claimed job whose payload does not decode goes to the dead-letter set with the decode
-- error; the worker goes on. ARGV[5] = id, ARGV[6] = token, ARGV[7] = error_json.
-- Returns {'stale'} (the lease was lost meanwhile) or {'dead', dependent refs...}.
local id = ARGV[5]
check_queue_keys('leased')
local f = read_job(id, 'token')
if not f then
  redis.call('ZREM', prefix .. 'leased', id)
  return {'dead', unpack(dead_wrong_type(id, 'a quarantine'))}
end
if f[1] ~= ARGV[6] then return {'stale'} end
redis.call('ZREM', prefix .. 'leased', id)
return {'dead', unpack(to_dead(id, ARGV[7]))}
