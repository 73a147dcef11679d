-- Deletes a dead job for good: its record, its idempotency key, and whatever poison was set
-- aside for it. Anything listed in the dead-letter set can be purged, a malformed member
-- included (its record may be missing or of the wrong type). ARGV[5] = id.
-- Returns {'ok'} or {'wrong_state', state} ('missing' when there is no such dead job).
local id = ARGV[5]
local key = job_key(id)
check_queue_keys()
local listed = redis.call('ZSCORE', prefix .. 'dead', id)
local f = read_job(id, 'state', 'idem', 'poison_key', 'error')
if f and f[1] and f[1] ~= 'dead' then return {'wrong_state', f[1]} end
if not listed and not (f and f[1]) then return {'wrong_state', 'missing'} end
redis.call('ZREM', prefix .. 'dead', id)
if f then
  unindex_dead(id, f[4])
  idem_release(f[2], id)
  if f[3] and f[3] ~= '' then redis.call('DEL', f[3]) end
end
redis.call('DEL', key)
emit(id, 'purged')
return {'ok'}
