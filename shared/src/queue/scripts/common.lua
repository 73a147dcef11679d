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

-- Idempotency entries. A key's hash (16 bytes, made by the caller from kind and key) is a
-- field of one of the queue's 32,768 small hashes, `idem:<4 hex digits of its first 15
-- bits>`, small enough to stay listpack-encoded (a top-level key per entry took about 200
-- bytes). Value: `<first job id without its kind's prefix>|<payload digest, 16 bytes>`.
-- A key lives exactly as long as its job: an entry whose job has neither a pending entry
-- nor a record (it expired with the retention) counts as absent, so finishing a job writes
-- nothing here; sweep_idem.lua deletes such entries a few buckets at a time. Why:
-- queue/idempotency.rs.
-- Records written before hold a 32-hex hash naming a key of its own, `idem:<hex>`.
local IDEM_BUCKETS = 32768
local function idem_bucket_key(n) return prefix .. 'idem:' .. string.format('%04x', n) end
local function idem_bucket(idem)
  return idem_bucket_key((string.byte(idem, 1) % 128) * 256 + string.byte(idem, 2))
end

-- An entry's value for job `id` (of this queue) and its payload digest.
local function idem_value(id, digest)
  return string.sub(id, #id_prefix + 2) .. '|' .. digest
end

-- Splits an entry's value into the first job's id and its payload digest ('' when stored
-- without one: it matches any payload).
local function idem_parse(value)
  local bar = string.find(value, '|', 1, true) or #value + 1
  local id = string.sub(value, 1, bar - 1)
  if not string.find(id, '_', 1, true) then id = id_prefix .. '_' .. id end
  return id, string.sub(value, bar + 1, bar + 16)
end

-- Whether job `id` (of this queue) still exists: waiting in `pending`, or with a record.
-- Its idempotency entry holds the key exactly that long.
local function idem_holder_lives(id)
  if redis.call('EXISTS', job_key(id)) == 1 then return true end
  return redis.pcall('HEXISTS', prefix .. 'pending', id) == 1
end

-- Keys written before the buckets: `idem:<32 hex digits of the hash>`, a string holding
-- `<id>|<payload digest in hex>` (or the id alone), with its record's TTL once its job
-- finished. Nothing moves them: they expire with their jobs, and expiry and release
-- (below) still find them. Until then an enqueue must still see them, so a queue that
-- existed before (its `counts` hash did) reads them on every lookup, one GET a new key; a
-- queue created since is marked `idem-format` = 2 by its first enqueue and never does.
local older_idem = {}

-- Whether this queue may hold keys written before the buckets.
local function may_hold_older_idem()
  if older_idem[prefix] == nil then
    older_idem[prefix] = redis.pcall('GET', prefix .. 'idem-format') ~= '2'
  end
  return older_idem[prefix]
end

-- Marks this queue as never holding keys written before the buckets, if it is new.
local function mark_new_idem_format()
  if may_hold_older_idem() and redis.call('EXISTS', prefix .. 'counts', prefix .. 'idem-format') == 0 then
    redis.call('SET', prefix .. 'idem-format', '2')
    older_idem[prefix] = false
  end
end

-- The key written before the buckets for hash `idem`, as a bucket entry's value
-- (`<id>|<digest, 16 bytes>`, or the id alone); nil when there is none.
local function older_idem_value(idem)
  if not may_hold_older_idem() then return nil end
  local hex = string.gsub(idem, '.', function(c) return string.format('%02x', string.byte(c)) end)
  local v = redis.pcall('GET', prefix .. 'idem:' .. hex)
  if type(v) ~= 'string' or v == '' then return nil end
  local bar = string.find(v, '|', 1, true)
  if not bar then return v end
  local digest = string.gsub(string.sub(v, bar + 1), '..', function(h)
    return string.char(tonumber(h, 16) or 0)
  end)
  return string.sub(v, 1, bar - 1) .. '|' .. digest
end

-- Job `id`'s idempotency key expires `retention` seconds from now (with the record), or
-- never (`retention` nil: the job runs again). Only a key written before the buckets (its
-- hash in hex) has a TTL of its own: a bucket entry lives with its job and needs nothing.
local function idem_expire(idem, id, retention)
  if not idem or idem == '' or #idem == 16 then return end
  local key = prefix .. 'idem:' .. idem
  if retention then redis.call('EXPIRE', key, retention) else redis.call('PERSIST', key) end
end

-- Deletes job `id`'s idempotency entry (the key may be used again). Nothing when another
-- job holds it.
local function idem_release(idem, id)
  if not idem or idem == '' then return end
  if #idem ~= 16 then
    local key = prefix .. 'idem:' .. idem
    local holder = redis.pcall('GET', key)
    if type(holder) == 'string' and (holder == id or string.sub(holder, 1, #id + 1) == id .. '|') then
      redis.call('DEL', key)
    end
    return
  end
  local key = idem_bucket(idem)
  local value = redis.pcall('HGET', key, idem)
  if type(value) == 'string' and idem_parse(value) == id then redis.call('HDEL', key, idem) end
end

-- A job enqueued straight onto the ready list has no record (hash) yet: its payload and
-- metadata wait in the queue's `pending` hash, field = id, value =
-- "max_attempts|created_ms|" then `#` and the idempotency key's hash (16 bytes), or `-`
-- without one, then the payload (sealed; binary). Entries written before hold
-- "max_attempts|created_ms|<hash in hex>|payload". Why, and who reads it: queue/pending.rs.
local function pending_record(max_attempts, created_ms, idem, payload)
  if idem == '' then return max_attempts .. '|' .. created_ms .. '|-' .. payload end
  return max_attempts .. '|' .. created_ms .. '|#' .. idem .. payload
end

-- Splits a pending entry into {payload, max_attempts, created_ms, idem}. A malformed entry
-- comes back with an empty payload, which the worker quarantines as undecodable.
local function parse_pending(rec)
  local a = string.find(rec, '|', 1, true)
  local b = a and string.find(rec, '|', a + 1, true)
  if not b then return {'', '1', now_text, ''} end
  local max_attempts = string.sub(rec, 1, a - 1)
  local created = string.sub(rec, a + 1, b - 1)
  if not whole(max_attempts) or not whole(created) then return {'', '1', now_text, ''} end
  local flag = string.byte(rec, b + 1)
  if flag == 45 then return {string.sub(rec, b + 2), max_attempts, created, ''} end
  if flag == 35 and #rec >= b + 17 then
    return {string.sub(rec, b + 18), max_attempts, created, string.sub(rec, b + 2, b + 17)}
  end
  local c = string.find(rec, '|', b + 1, true)
  if not c then return {'', '1', now_text, ''} end
  return {string.sub(rec, c + 1), max_attempts, created, string.sub(rec, b + 1, c - 1)}
end

-- Ends a job that has not started because its batch was cancelled: state `cancelled`,
-- kept for the retention like any finished job, and its idempotency key released so the
-- work can be enqueued again. `entry` is its pending entry when it has no record yet.
-- Returns its dependents, which the caller cancels too.
local function cancel_job(id, entry, source, retention)
  local key = job_key(id)
  local idem
  if entry then
    local p = parse_pending(entry)
    redis.call('HDEL', prefix .. 'pending', id)
    redis.call('HSET', key, 'payload', p[1], 'attempts', 0, 'max_attempts', p[2],
      'created_ms', p[3], 'idem', p[4], 'lane', 'bulk', 'source', source)
    idem = p[4]
  else
    idem = redis.call('HGET', key, 'idem')
  end
  redis.call('HSET', key, 'state', 'cancelled', 'updated_ms', now_text, 'finished_ms', now_text)
  redis.call('ZREM', prefix .. 'scheduled', id)
  redis.call('ZREM', prefix .. 'waiting', id)
  idem_release(idem, id)
  redis.call('EXPIRE', key, retention)
  redis.call('HINCRBY', prefix .. 'counts', 'cancelled', 1)
  count_source(source, 'cancelled')
  emit_untrimmed(id, 'cancelled')
  local deps_key = prefix .. 'deps:' .. id
  local deps = redis.pcall('SMEMBERS', deps_key)
  redis.call('DEL', deps_key)
  if deps.err then return {} end
  return deps
end

-- Builds the record of a pending job (still queued) and removes its entry, for scripts that
-- must write to the record before any worker claimed the job. False when it had none.
local function materialize_pending(id)
  local rec = redis.call('HGET', prefix .. 'pending', id)
  if not rec then return false end
  local p = parse_pending(rec)
  redis.call('HSET', job_key(id), 'payload', p[1], 'state', 'queued', 'attempts', 0,
    'max_attempts', p[2], 'created_ms', p[3], 'updated_ms', p[3], 'run_at_ms', p[3],
    'parent', '', 'idem', p[4])
  redis.call('HDEL', prefix .. 'pending', id)
  return true
end

-- A job's state, also for a job still pending (queued, no record yet): 'missing' when there
-- is no such job, 'malformed' when its record is not a hash.
local function job_state(id)
  local f = read_job(id, 'state')
  if not f then return 'malformed' end
  if f[1] then return f[1] end
  if redis.call('HEXISTS', prefix .. 'pending', id) == 1 then return 'queued' end
  return 'missing'
end

-- Moves a job whose code deadline passed to `expired`: kept for the retention like any
-- finished job, and so is its idempotency key. Returns its dependents, which the caller
-- must fail.
local function to_expired(id, retention)
  local key = job_key(id)
  count_source(redis.call('HGET', key, 'source'), 'expired')
  redis.call('ZREM', prefix .. 'awaiting', id)
  redis.call('HSET', key, 'state', 'expired', 'updated_ms', now_text, 'finished_ms', now_text)
  redis.call('HDEL', key, 'code', 'early_code', 'early_deadline_ms')
  redis.call('EXPIRE', key, retention)
  local idem = redis.call('HGET', key, 'idem')
  idem_expire(idem, id, retention)
  redis.call('HINCRBY', prefix .. 'counts', 'expired', 1)
  emit(id, 'expired')
  local deps_key = prefix .. 'deps:' .. id
  local deps = redis.pcall('SMEMBERS', deps_key)
  redis.call('DEL', deps_key)
  if deps.err then return {} end
  return deps
end
