-- Deletes idempotency entries whose jobs no longer exist (their records expired with the
-- retention; lookups already count them as absent), looking at ARGV[5] buckets per call
-- from where the last call stopped (`idem-sweep`), so the sweepers of every worker share one
-- pass over the queue's buckets. A bucket of the wrong type is left to enqueue (it moves it
-- aside). Returns {entries deleted, the next bucket}.
local count = tonumber(ARGV[5])
local cursor_key = prefix .. 'idem-sweep'
local at = redis.pcall('GET', cursor_key)
at = (type(at) == 'string' and whole(at, 0)) or 0
at = at % IDEM_BUCKETS
local removed = 0
for _ = 1, count do
  local key = idem_bucket_key(at)
  local all = redis.pcall('HGETALL', key)
  if not all.err then
    local gone = {}
    for i = 1, #all, 2 do
      if not idem_holder_lives(idem_parse(all[i + 1])) then gone[#gone + 1] = all[i] end
    end
    if #gone > 0 then
      redis.call('HDEL', key, unpack(gone))
      removed = removed + #gone
    end
  end
  at = (at + 1) % IDEM_BUCKETS
end
redis.call('SET', cursor_key, string.format('%d', at))
return {removed, at}
