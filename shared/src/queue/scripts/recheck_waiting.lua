-- Finds children that have waited on a parent longer than ARGV[5] ms, so the caller can
-- register them with their parent again (a crash between a parent's ack and the
-- resolution of its children leaves them waiting). Each is pushed further out in the set
-- (ZADD XX: a child released meanwhile is never put back) so busy sweepers spread out.
-- Members that are not waiting any more are dropped; records that cannot be used are
-- dead-lettered. Returns {id, parent, id, parent, ...} ('' for no parent).
local older = tonumber(ARGV[5])
check_queue_keys('waiting')
local ids = redis.call('ZRANGEBYSCORE', prefix .. 'waiting', '-inf',
  string.format('%d', now - older), 'LIMIT', 0, 200)
local out = {}
for _, id in ipairs(ids) do
  local f = read_job(id, 'state', 'parent')
  if not f then
    redis.call('ZREM', prefix .. 'waiting', id)
    dead_wrong_type(id, 'waiting set')
  elseif not f[1] then
    redis.call('ZREM', prefix .. 'waiting', id)
    dead_no_record(id, 'waiting set')
  elseif f[1] ~= 'waiting' then
    redis.call('ZREM', prefix .. 'waiting', id)
  else
    redis.call('ZADD', prefix .. 'waiting', 'XX', now_text, id)
    out[#out + 1] = id
    out[#out + 1] = f[2] or ''
  end
end
return out
