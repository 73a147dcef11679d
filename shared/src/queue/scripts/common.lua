-- Shared helpers, prepended to every queue script by queue/scripts.rs.
--
-- Every script gets KEYS[1] = its provider's notify list (it routes the call to the
-- provider's slot), KEYS[2] = the events stream its state changes go to, and
-- ARGV[1] = the queue's key prefix `onboard:{<provider>}:<kind>:`, ARGV[2] = the stream's
-- approximate max length, ARGV[3] = the kind, ARGV[4] = the kind's job-id prefix (`cust`,
-- ...). Its own arguments start at ARGV[5]. Every other key a script touches is built from
-- the prefix, so it carries the provider's hash tag: each script runs in one slot, on one
-- node of a Redis Cluster (on a cluster the events stream is the provider's own,
-- `onboard:{<provider>}:events`). A script about several kinds of one provider switches
-- between them with use_kind. Key names: queue/keys.rs.
--
-- Two rules hold in every script:
-- * One clock: "now" is Redis's TIME, read here. No caller's clock decides a lease, a
--   schedule, a deadline, a retention or an event's time.
-- * Poison stalls nothing: a script reads what it needs and checks it BEFORE it writes
--   (Redis does not roll a failed script back). A queue key of the wrong type is moved aside
--   and a job record that cannot be used is dead-lettered with a reason naming the key and
--   the field; the rest of the batch carries on.
local prefix = ARGV[1]
local events_key = KEYS[2]
local events_maxlen = ARGV[2]
local kind = ARGV[3]
local id_prefix = ARGV[4]
local provider_prefix = string.sub(prefix, 1, #prefix - #kind - 1)

-- The job-id prefix of each kind (queue/ids.rs holds the same table).
local ID_PREFIX = {['create-customer'] = 'cust', ['bind-devices'] = 'bind',
  ['create-account'] = 'acct', ['register-user'] = 'user'}

-- Makes the helpers below work on kind `k`'s queue (same provider).
local function use_kind(k)
  kind = k
  prefix = provider_prefix .. k .. ':'
  id_prefix = ID_PREFIX[k]
end

local clock = redis.call('TIME')
local clock_ms = math.floor(tonumber(clock[2]) / 1000)
local now = tonumber(clock[1]) * 1000 + clock_ms
-- `now` as text, for redis.call: Redis 7.0 prints every Lua number handed to a command with
-- snprintf("%.17g"), which costs more than a small command itself. Hot paths pass strings.
local now_text = clock[1] .. string.format('%03d', clock_ms)

local function job_key(id) return prefix .. 'job:' .. id end

-- Appends a state change to the events stream only. Scripts that write one event per job
-- of a batch (enqueue, fetch, ack_succeeded) call this and trim_events once at the end: MAXLEN
-- on every entry was a fifth of an entry's cost. They write the job's history line in the
-- HSET they make anyway (see history_line); every other change goes through emit.
local function stream_event(id, state, extra_field, extra_value)
  if extra_field then
    redis.call('XADD', events_key, '*', 'job_id', id, 'kind', kind, 'state', state,
      'at_ms', now_text, extra_field, extra_value)
  else
    redis.call('XADD', events_key, '*', 'job_id', id, 'kind', kind, 'state', state,
      'at_ms', now_text)
  end
end

-- A job's history (its timeline in the console) is the `history` field of its record: one
-- line per change, "<at_ms>\t<state>[\t<field>\t<value>]\n" (values are our own reasons,
-- attempt numbers or JSON error records, which hold no tab or newline). It lives and expires
-- with the record, so it costs no key of its own; a job still pending has no record and no
-- history yet (its creation time stands for its `queued` line). The field is capped: past
-- HISTORY_MAX bytes the oldest lines go.
local HISTORY_MAX = 4096

-- One history line; `at` defaults to now.
local function history_line(state, extra_field, extra_value, at)
  if extra_field then
    return (at or now_text) .. '\t' .. state .. '\t' .. extra_field .. '\t' .. extra_value .. '\n'
  end
  return (at or now_text) .. '\t' .. state .. '\n'
end

-- `history` (the field's value, or nil) with `line` appended, capped.
local function history_with(history, line)
  local h = (history or '') .. line
  if #h > HISTORY_MAX then
    local cut = string.find(h, '\n', #h - HISTORY_MAX + 1, true)
    if cut then h = string.sub(h, cut + 1) end
  end
  return h
end

-- Appends a line to job `id`'s history when it has a record with one (a record of the wrong
-- type, or none, is left alone: poison never stops a state change).
local function remember(id, line)
  local key = job_key(id)
  local h = redis.pcall('HGET', key, 'history')
  if type(h) == 'string' then redis.pcall('HSET', key, 'history', history_with(h, line)) end
end

-- A state change of one job, for scripts that trim once: the event and the history line.
local function emit_untrimmed(id, state, extra_field, extra_value)
  stream_event(id, state, extra_field, extra_value)
  remember(id, history_line(state, extra_field, extra_value))
end

-- Keeps the events stream near its cap.
local function trim_events()
  redis.call('XTRIM', events_key, 'MAXLEN', '~', events_maxlen)
end

-- A state change of a single job: the event, then the trim.
local function emit(id, state, extra_field, extra_value)
  emit_untrimmed(id, state, extra_field, extra_value)
  trim_events()
end

-- Wakes one idle worker blocked on the notify list; a short list is enough to wake all
-- idle workers without letting tokens pile up.
local function wake()
  redis.call('RPUSH', provider_prefix .. 'notify', '1')
  redis.call('LTRIM', provider_prefix .. 'notify', -64, -1)
end

-- Moves a key of the wrong type aside and records it in the dead-letter set (defined with
-- the other poison helpers below).
local set_aside

-- The list of due jobs of one lane and source.
local function ready_list(lane, source)
  return prefix .. 'ready:' .. lane .. ':' .. source
end

-- A list of `lane` and `source` that just got its first job joins the lane's ring (unless
-- its source is paused): the claim takes from the ring's entries in turn.
local function join_ring(lane, source)
  redis.call('SADD', prefix .. 'sources', lane .. ':' .. source)
  if redis.call('SISMEMBER', provider_prefix .. 'paused-sources', source) == 0 then
    redis.call('RPUSH', provider_prefix .. 'ring:' .. lane, kind .. '|' .. source)
  end
end

-- Puts job `id` in its lane and source's ready list (at the front when `front`).
local function push_ready(id, lane, source, front)
  local list = ready_list(lane, source)
  local n = redis.pcall(front and 'LPUSH' or 'RPUSH', list, id)
  if type(n) == 'table' then
    -- Poison: the list is of another type. Set it aside (recorded), start a fresh one.
    set_aside(list, 'list')
    n = redis.call(front and 'LPUSH' or 'RPUSH', list, id)
  end
  if n == 1 then join_ring(lane, source) end
  wake()
end

-- Puts a job that has a record back in its ready list: its lane and source are on it.
local function make_ready(id, front)
  local f = redis.call('HMGET', prefix .. 'job:' .. id, 'lane', 'source')
  push_ready(id, f[1] or 'live', f[2] or 'default', front)
end

-- Counts an event of `source` (`enqueued`, `succeeded`, `dead`, `expired`, `cancelled`).
local function count_source(source, what, n)
  if source and source ~= '' then
    redis.call('HINCRBY', provider_prefix .. 'source:' .. source, what, n or 1)
  end
end

-- Dead letters are also grouped by their error code, so an operator can see and act on one
-- group without reading the whole dead-letter set: `dead-codes` (hash: code -> count) and
-- `dead-code:<code>` (sorted set of ids by death time). The index is advisory: the dead set
-- stays the truth, and a poisoned index key never stops a job from dying (pcall).
local function dead_code_of(error_json)
  local ok, e = pcall(cjson.decode, error_json or '')
  if ok and type(e) == 'table' and type(e.code) == 'string' and e.code ~= '' then
    return e.code
  end
  return 'unknown'
end

local function index_dead(id, error_json)
  local code = dead_code_of(error_json)
  redis.pcall('ZADD', prefix .. 'dead-code:' .. code, now_text, id)
  redis.pcall('HINCRBY', prefix .. 'dead-codes', code, 1)
end

-- Takes job `id` out of its dead-letter group (`error_json`: its record's `error` field).
local function unindex_dead(id, error_json)
  local code = dead_code_of(error_json)
  if redis.pcall('ZREM', prefix .. 'dead-code:' .. code, id) == 1 then
    local left = redis.pcall('HINCRBY', prefix .. 'dead-codes', code, -1)
    if type(left) == 'number' and left <= 0 then redis.pcall('HDEL', prefix .. 'dead-codes', code) end
  end
end

-- Moves a job to the dead-letter set with its error record (JSON text); the job's record
-- must be a hash (or absent). Returns the ids of jobs waiting on this one, which the
-- caller must fail.
local function to_dead(id, error_json)
  local key = job_key(id)
  count_source(redis.call('HGET', key, 'source'), 'dead')
  redis.call('HSET', key, 'state', 'dead', 'error', error_json, 'finished_ms', now_text,
    'updated_ms', now_text, 'token', '')
  redis.call('HDEL', key, 'code', 'early_code', 'early_deadline_ms')
  redis.call('ZADD', prefix .. 'dead', now_text, id)
  redis.call('HINCRBY', prefix .. 'counts', 'dead', 1)
  index_dead(id, error_json)
  emit(id, 'dead', 'error', error_json)
  local deps_key = prefix .. 'deps:' .. id
  local deps = redis.pcall('SMEMBERS', deps_key)
  redis.call('DEL', deps_key)
  if deps.err then return {} end
  return deps
end

-- The error record of something that cannot be used as it stands.
local function malformed(code, message)
  return cjson.encode({class = 'undecodable', code = code, message = message})
end

-- A number unique to this queue, for names of things set aside. Its own key may be poison
-- too: then the clock serves.
local function sequence()
  local n = redis.pcall('INCR', prefix .. 'poison_seq')
  if type(n) == 'table' then return now_text end
  return tostring(n)
end

-- Renames a key of the wrong type out of the way; returns where it went.
local function move_aside(key)
  local to = prefix .. 'poison:' .. sequence()
  redis.call('RENAME', key, to)
  return to
end

-- Dead-letters job `id` whose record (`job:<id>`) is not a hash: the key is moved aside
-- (named in the record, so purging the job deletes it) and a record of the problem takes
-- its place. `seen_in` names the set the id came from.
local function dead_wrong_type(id, seen_in)
  local key = job_key(id)
  local found = redis.call('TYPE', key)['ok']
  local to = move_aside(key)
  redis.call('HSET', key, 'payload', '', 'attempts', 0, 'max_attempts', 0,
    'created_ms', now_text, 'poison_key', to)
  return to_dead(id, malformed('MalformedRecord', 'key ' .. key .. ' is a ' .. found ..
    ', not a hash (found through ' .. seen_in .. '); moved to ' .. to))
end

-- Dead-letters an id that a set or list named but that has no record.
local function dead_no_record(id, seen_in)
  redis.call('HSET', job_key(id), 'payload', '', 'attempts', 0, 'max_attempts', 0,
    'created_ms', now_text)
  return to_dead(id, malformed('NoJobRecord', 'the ' .. seen_in ..
    ' named job ' .. id .. ', which has no record'))
end

-- Dead-letters a job whose record holds a field that cannot be read.
local function dead_bad_field(id, field, want)
  return to_dead(id, malformed('MalformedRecord', 'field ' .. field .. ' of key ' ..
    job_key(id) .. ' is not ' .. want))
end

-- Reads fields of job `id`'s record. Returns the values, or nil when the key is not a hash.
local function read_job(id, ...)
  local r = redis.pcall('HMGET', job_key(id), ...)
  if r.err then return nil end
  return r
end

-- A record field that must hold a whole number (absent counts as `default`); nil if not.
local function whole(value, default)
  if value == false or value == nil then return default end
  local n = tonumber(value)
  if n == nil or n ~= math.floor(n) then return nil end
  return n
end

set_aside = function(key, want)
  local found = redis.call('TYPE', key)['ok']
  local to = move_aside(key)
  local id = id_prefix .. '_POISON' .. sequence()
  redis.call('HSET', job_key(id), 'payload', '', 'attempts', 0, 'max_attempts', 0,
    'created_ms', now_text, 'poison_key', to)
  to_dead(id, malformed('MalformedKey', 'key ' .. key .. ' was a ' .. found ..
    ', not a ' .. want .. '; moved to ' .. to))
end

-- The type each queue key must have (its provider's keys are checked with the kind's).
local KEY_TYPES = {
  pending = 'hash', counts = 'hash', scheduled = 'zset', leased = 'zset', dead = 'zset',
  awaiting = 'zset', waiting = 'zset', sources = 'set',
}
local PROVIDER_KEY_TYPES = {
  notify = 'list', ['notify:live'] = 'list', ['ring:live'] = 'list', ['ring:bulk'] = 'list', lanes = 'hash',
  weights = 'hash', ['paused-sources'] = 'set', ['paused-kinds'] = 'set',
}

-- Makes sure the queue keys a script is about to use have their types: one that does not is
-- moved aside and recorded in the dead-letter set as a problem of its own, and the script
-- carries on with a fresh, empty key. `dead` and `counts` are always checked first, since
-- recording a problem writes to them.
local function check_queue_keys(...)
  local names = {'dead', 'counts'}
  for _, name in ipairs({...}) do names[#names + 1] = name end
  for _, name in ipairs(names) do
    local want = KEY_TYPES[name]
    local key = prefix .. name
    if not want then
      want = PROVIDER_KEY_TYPES[name]
      key = provider_prefix .. name
    end
    local found = redis.call('TYPE', key)['ok']
    if found ~= 'none' and found ~= want then set_aside(key, want) end
  end
end

-- Checks the keys a script that makes jobs ready writes: the notify list, the kind's list of
-- sources, the provider's rings and paused sources.
local function check_ready_keys()
  check_queue_keys('notify', 'sources', 'ring:live', 'ring:bulk', 'paused-sources')
end
