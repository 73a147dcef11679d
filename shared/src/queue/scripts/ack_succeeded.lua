-- Records the success of one or more attempts of this queue, each checked against its
-- lease token (a worker whose lease expired cannot overwrite the outcome).
-- ARGV[5] = retention_secs, ARGV[6] = number of jobs, then 3 values per job:
--   id, token, result (ciphertext)
-- Returns, per job: status ('succeeded', 'stale', or 'dead' when its record could not be
-- used), the number of dependents, then their refs, which the caller resolves in their own
-- queues.
--
-- Success is the common case of a busy worker, so the worker gathers the successes that
-- end while a call is in flight and records them together: one script call, one ZREM of
-- the leases and one counter update per batch (and per source); per job one HMGET, one HSET (its history
-- line included), its expiry and its event. It skips what a job does not have (a code, an idempotency key,
-- dependents; see add_dependent.lua for the `deps` flag).
--
-- Each field read costs, found or not, so it reads only the fields this queue's jobs can
-- have: a code only where jobs are handed one (create-account's verify phase), and the
-- idempotency key only where it may be one written before the buckets, the only kind that
-- expires with its job (idempotency.lua).
local retention = ARGV[5]
local n = tonumber(ARGV[6])
local out = {}
local done = {}
-- Successes per source, counted once per call.
local per_source = {}
check_queue_keys('leased')
local fields = {'token', 'deps', 'source', 'history', 'uncertain'}
local HANDED_A_CODE = {['create-account'] = true}
local code_at, idem_at
if HANDED_A_CODE[kind] then
  fields[#fields + 1] = 'code'
  code_at = #fields
end
if may_hold_older_idem() then
  fields[#fields + 1] = 'idem'
  idem_at = #fields
end
local succeeded_line = history_line('succeeded')
for i = 0, n - 1 do
  local base = 7 + i * 3
  local id = ARGV[base]
  local key = job_key(id)
  local held = read_job(id, unpack(fields))
  if not held then
    redis.call('ZREM', prefix .. 'leased', id)
    dead_wrong_type(id, 'an acknowledgement')
    out[#out + 1] = 'dead'
    out[#out + 1] = 0
  elseif held[1] ~= ARGV[base + 1] or ARGV[base + 1] == '' then
    out[#out + 1] = 'stale'
    out[#out + 1] = 0
  else
    done[#done + 1] = id
    -- `finished_ms` stands for `updated_ms` (see last_change in job_rows.lua).
    redis.call('HSET', key, 'token', '', 'state', 'succeeded',
      'result', ARGV[base + 2], 'finished_ms', now_text,
      'history', history_with(held[4], succeeded_line))
    -- Its outcome is known now. Most jobs never were uncertain: an absent field reads as 0,
    -- and a field not written is one fewer scan of the record.
    if held[5] and held[5] ~= '0' then redis.call('HSET', key, 'uncertain', '0') end
    if code_at and held[code_at] then redis.call('HDEL', key, 'code') end
    if held[3] then per_source[held[3]] = (per_source[held[3]] or 0) + 1 end
    redis.call('EXPIRE', key, retention)
    if idem_at then idem_expire(held[idem_at], retention) end
    stream_event(id, 'succeeded')
    out[#out + 1] = 'succeeded'
    if held[2] then
      local deps_key = prefix .. 'deps:' .. id
      local deps = redis.call('SMEMBERS', deps_key)
      redis.call('DEL', deps_key)
      out[#out + 1] = #deps
      for _, d in ipairs(deps) do out[#out + 1] = d end
    else
      out[#out + 1] = 0
    end
  end
end
if #done > 0 then
  redis.call('ZREM', prefix .. 'leased', unpack(done))
  redis.call('HINCRBY', prefix .. 'counts', 'succeeded', tostring(#done))
  for source, count in pairs(per_source) do count_source(source, 'succeeded', tostring(count)) end
  trim_events()
end
return out
