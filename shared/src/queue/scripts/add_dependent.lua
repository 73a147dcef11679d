-- Runs in the PARENT's queue: registers a child to be resolved when the parent ends, and
-- says where the parent stands now. ARGV[6] = parent id, ARGV[7] = child ref ("kind|id").
-- Returns {'pending'}, {'succeeded'}, {'failed', state} or {'missing'}.
local state = redis.call('HGET', job_key(ARGV[6]), 'state')
if not state then return {'missing'} end
if state == 'succeeded' then return {'succeeded'} end
if state == 'dead' or state == 'expired' then return {'failed', state} end
redis.call('SADD', prefix .. 'deps:' .. ARGV[6], ARGV[7])
return {'pending'}
