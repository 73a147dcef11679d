-- Cancels one job that has not started: queued (pending, or with a record), scheduled,
-- waiting for its parent, or awaiting a code. It ends `cancelled` like a job of a cancelled
-- batch (common.lua's cancel_job: kept for the retention, its idempotency key released).
-- Its ready-list entry, if any, stays where it is and the next claim drops it (a claim skips
-- ids whose record is no longer queued), so the cost never grows with the queue.
-- ARGV[5] = id, ARGV[6] = retention of finished jobs (s).
-- Returns {'ok', dependent refs...} (the caller cancels the dependents) or
-- {'wrong_state', state} ('missing': no such job; 'malformed': its record is not a hash).
local id = ARGV[5]
check_queue_keys('pending', 'scheduled', 'waiting', 'awaiting')
local entry = redis.call('HGET', prefix .. 'pending', id)
local source = ''
if not entry then
  local f = read_job(id, 'state', 'source')
  if not f then return {'wrong_state', 'malformed'} end
  if not f[1] then return {'wrong_state', 'missing'} end
  local state = f[1]
  if state ~= 'queued' and state ~= 'scheduled' and state ~= 'waiting'
    and state ~= 'awaiting_code' then
    return {'wrong_state', state}
  end
  source = f[2] or ''
  redis.call('ZREM', prefix .. 'awaiting', id)
end
return {'ok', unpack(cancel_job(id, entry, source, ARGV[6]))}
