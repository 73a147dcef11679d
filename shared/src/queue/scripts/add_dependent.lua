-- Runs in the PARENT's queue: registers a child to be resolved when the parent ends, and
-- says where the parent stands now. ARGV[6] = parent id, ARGV[7] = child ref ("kind|id").
-- Returns {'pending'}, {'succeeded'}, {'failed', state} or {'missing'}.
-- The parent's record gets `deps` = 1, so acknowledging a job without dependents need not
-- look for them.
local parent = ARGV[6]
materialize_pending(parent)
local state = redis.call('HGET', job_key(parent), 'state')
if not state then return {'missing'} end
if state == 'succeeded' then return {'succeeded'} end
if state == 'dead' or state == 'expired' then return {'failed', state} end
redis.call('SADD', prefix .. 'deps:' .. parent, ARGV[7])
redis.call('HSET', job_key(parent), 'deps', 1)
return {'pending'}
