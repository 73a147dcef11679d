-- Moves jobs whose code deadline passed from awaiting_code to expired (common.lua's
-- to_expired: retention on the record and its idempotency key). Safe to run in every worker
-- at once: each job is moved by whichever call sees it first. The one place jobs expire.
-- ARGV[5] = retention_secs.
-- Returns {number expired, dependent refs...} (the dependents of expired jobs, to fail).
check_queue_keys('awaiting')
local due = redis.call('ZRANGEBYSCORE', prefix .. 'awaiting', '-inf', now_text, 'LIMIT', 0, 500)
local n = 0
local deps = {}
for _, id in ipairs(due) do
  local f = read_job(id, 'state')
  if not f then
    redis.call('ZREM', prefix .. 'awaiting', id)
    dead_wrong_type(id, 'awaiting set')
  elseif not f[1] then
    redis.call('ZREM', prefix .. 'awaiting', id)
    dead_no_record(id, 'awaiting set')
  elseif f[1] == 'awaiting_code' then
    for _, d in ipairs(to_expired(id, tonumber(ARGV[5]))) do deps[#deps + 1] = d end
    n = n + 1
  else
    redis.call('ZREM', prefix .. 'awaiting', id)
  end
end
local out = {n}
for _, d in ipairs(deps) do out[#out + 1] = d end
return out
