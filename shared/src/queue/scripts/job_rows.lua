-- Reads one page of a queue's jobs for the console: for each id, what a list shows of it,
-- from its record or, for a job still pending, from its pending entry. Writes nothing; a
-- record of the wrong type is reported, not moved (the next claim or ack does that).
-- ARGV[5..] = job ids of this queue (a page: the caller bounds it).
-- Returns 9 values per id: id, state ('missing' when there is neither record nor pending
-- entry, 'malformed' when the record is not a hash), attempts, max_attempts, created_ms,
-- updated_ms, lane, source, error (the JSON error record, or '').
local out = {}

-- When a record last changed: the latest of its `updated_ms`, `started_ms` and
-- `finished_ms`. A claim writes only `started_ms` and a success only `finished_ms`, both
-- "now": the two writes every job makes have one field less to write and to scan past
-- (store/admin.rs reads a whole record the same way).
local function last_change(updated, started, finished)
  local latest = 0
  for _, at in ipairs({updated, started, finished}) do
    local ms = whole(at, 0)
    if ms and ms > latest then latest = ms end
  end
  return string.format('%d', latest)
end

local function row(...)
  for _, v in ipairs({...}) do out[#out + 1] = v end
end
for i = 5, #ARGV do
  local id = ARGV[i]
  local f = read_job(id, 'state', 'attempts', 'max_attempts', 'created_ms', 'updated_ms',
    'lane', 'source', 'error', 'started_ms', 'finished_ms')
  if not f then
    row(id, 'malformed', '0', '0', '0', '0', '', '', '')
  elseif f[1] then
    row(id, f[1], f[2] or '0', f[3] or '0', f[4] or '0', last_change(f[5], f[9], f[10]),
      f[6] or '', f[7] or '', f[8] or '')
  else
    local entry = redis.pcall('HGET', prefix .. 'pending', id)
    if type(entry) == 'string' then
      local p = parse_pending(entry)
      row(id, 'queued', '0', p[2], p[3], p[3], '', '', '')
    else
      row(id, 'missing', '0', '0', '0', '0', '', '', '')
    end
  end
end
return out
