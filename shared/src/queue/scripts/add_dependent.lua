-- Runs in the PARENT's queue: registers a child to be resolved when the parent ends, and
-- says where the parent stands now. ARGV[5] = parent id, ARGV[6] = child ref ("kind|id").
-- Returns {'pending'}, {'succeeded'}, {'failed', state} or {'missing'}.
-- The parent's record gets `deps` = 1, so acknowledging a job without dependents need not
-- look for them. A parent whose record cannot be read counts as failed ('malformed').
local parent = ARGV[5]
check_queue_keys('pending')
local f = read_job(parent, 'state')
if not f then return {'failed', 'malformed'} end
if not f[1] then
  materialize_pending(parent)
  f = read_job(parent, 'state')
end
local state = f[1]
if not state then return {'missing'} end
if state == 'succeeded' then return {'succeeded'} end
if state == 'dead' or state == 'expired' or state == 'cancelled' then
  return {'failed', state}
end
local deps_key = prefix .. 'deps:' .. parent
if redis.call('TYPE', deps_key)['ok'] ~= 'set' then redis.call('DEL', deps_key) end
redis.call('SADD', deps_key, ARGV[6])
redis.call('HSET', job_key(parent), 'deps', 1)
return {'pending'}
