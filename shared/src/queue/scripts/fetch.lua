-- Claims due jobs of one provider's kinds for a worker, in the order the provider's capacity
-- should go: live before bulk (bulk keeps a minimum share), round-robin between sources
-- within a lane, and only as many as the provider's rate limit admits now. Each claimed
-- job's request slot is reserved here, so a claimed job never waits at the gate holding a
-- worker slot while a later live job could have gone first.
--
-- ARGV[5] = most jobs to claim, ARGV[6] = lease (ms), ARGV[7] = a token prefix unique to
-- this claim (each job's lease token is prefix:i), ARGV[8] = the provider limit's rate in
-- requests per second (0 = no limit), ARGV[9] = the guard at the end of each second (µs,
-- see slots.lua), ARGV[10] = how far ahead a slot may be reserved (ms), ARGV[11] = live
-- claims after which bulk is owed one (its minimum share; 0 = never owed), ARGV[12] =
-- retention of finished jobs (s), ARGV[13] = number of kinds this worker runs, then the
-- kinds. The kind in ARGV[3] is the first of them. KEYS[3] = the limit's slot key.
--
-- Before claiming, for each kind it promotes due scheduled jobs and takes back jobs whose
-- lease expired (recovery is keyed on jobs, whoever held them). Every range is bounded.
-- It counts what it claims: each kind's `started` counter and the limit's used slots.
--
-- Returns {wait_ms, held_back (1 when the limit, not a lack of work, stopped the claim), n,
-- now_ms (Redis's clock at the claim), then 12 values per job:
--   id, payload, attempts, max_attempts, token, uncertain, phase, code, code_failures,
--   lane, delay_us (until its reserved request slot), created_ms (when it was enqueued)}
-- where wait_ms is 0 when the caller should claim again at once, else how long it may sleep
-- before something here falls due or the limit admits another request (at most a second),
-- on Redis's clock. The caller reckons how long each job waited (now_ms - created_ms): a
-- `tonumber` per job here costs Redis more than the rest of the job's reply.
local batch = tonumber(ARGV[5])
local lease_ms = tonumber(ARGV[6])
local token_prefix = ARGV[7]
local rate = tonumber(ARGV[8])
local guard = tonumber(ARGV[9])
local lead = tonumber(ARGV[10]) * 1000
local live_per_bulk = tonumber(ARGV[11])
local slot_key = KEYS[3]
local retention = ARGV[12]
local kinds = {}
for i = 1, tonumber(ARGV[13]) do kinds[i] = ARGV[13 + i] end
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

check_queue_keys('notify', 'ring:live', 'ring:bulk', 'lanes', 'weights', 'paused-sources',
  'paused-kinds')
local enabled = {}
for _, k in ipairs(kinds) do enabled[k] = true end
local paused = {}
for _, k in ipairs(redis.call('SMEMBERS', provider_prefix .. 'paused-kinds')) do paused[k] = true end

-- 1. and 2., per kind: due scheduled jobs join their ready list; expired leases are taken
-- back (their attempt's outcome is unknown: uncertain, and to the front of the line).
local wait = 1000
for _, k in ipairs(kinds) do
  use_kind(k)
  check_queue_keys('pending', 'scheduled', 'leased', 'sources')
  local due = redis.call('ZRANGEBYSCORE', prefix .. 'scheduled', '-inf', now_text, 'LIMIT', '0', '1000')
  for _, id in ipairs(due) do
    redis.call('ZREM', prefix .. 'scheduled', id)
    local f = read_job(id, 'state')
    if not f then
      dead_wrong_type(id, 'scheduled set')
    elseif not f[1] then
      dead_no_record(id, 'scheduled set')
    elseif f[1] == 'retry_scheduled' or f[1] == 'scheduled' then
      redis.call('HSET', job_key(id), 'state', 'queued', 'updated_ms', now_text)
      make_ready(id, false)
      emit(id, 'queued')
    end
  end
  local expired = redis.call('ZRANGEBYSCORE', prefix .. 'leased', '-inf', now_text, 'LIMIT', '0', '100')
  for _, id in ipairs(expired) do
    redis.call('ZREM', prefix .. 'leased', id)
    redis.call('HINCRBY', prefix .. 'counts', 'leases_expired', 1)
    local f = read_job(id, 'state', 'attempts', 'max_attempts')
    if not f then
      dead_wrong_type(id, 'leased set')
    elseif not f[1] then
      dead_no_record(id, 'leased set')
    elseif f[1] == 'running' then
      local attempts, max_attempts = whole(f[2], 0), whole(f[3], 1)
      if not attempts then
        dead_bad_field(id, 'attempts', 'a whole number')
      elseif not max_attempts then
        dead_bad_field(id, 'max_attempts', 'a whole number')
      else
        local key = job_key(id)
        redis.call('HSET', key, 'uncertain', 1, 'token', '', 'updated_ms', now_text)
        if attempts >= max_attempts then
          to_dead(id, cjson.encode({class = 'lease_expired', code = 'LeaseExpired',
            message = 'lease expired on the last allowed attempt; attempts used up'}))
        else
          redis.call('HSET', key, 'state', 'queued')
          make_ready(id, true)
          emit(id, 'queued', 'reason', 'lease expired')
        end
      end
    end
  end
  local s = redis.call('ZRANGE', prefix .. 'scheduled', 0, 0, 'WITHSCORES')
  if s[2] then wait = math.min(wait, tonumber(s[2]) - now) end
  local l = redis.call('ZRANGE', prefix .. 'leased', 0, 0, 'WITHSCORES')
  if l[2] then wait = math.min(wait, tonumber(l[2]) - now) end
end

-- 3. How many requests the provider admits now: none while it asked everyone to slow down;
-- else its free slots up to `lead` ahead (slots.lua; `slot` is the next free one).
local room = batch
local slot = nil
local cooldown = redis.call('PTTL', provider_prefix .. 'rl:cooldown')
if cooldown > 0 then
  room = 0
  wait = math.min(wait, cooldown)
elseif rate > 0 then
  slot = read_slot(slot_key, now_us, rate, guard)
  room = 0
  local s = slot
  while room < batch and slot_time(s, rate, guard) <= now_us + lead do
    room = room + 1
    s = slot_after(s, rate)
  end
end

-- 4. Choose whose jobs go first. A lane's ring lists its `<kind>|<source>` lists with work;
-- a source gives `weight` jobs in a row (its turn, counted in `lanes`), then its entry moves
-- to the back (round-robin between sources). Live goes first, unless bulk is owed its share.
-- Jobs are taken a turn at a time (one LPOP of several ids), not one by one: the order is
-- the same, and a busy claim makes a few commands per source instead of several per job.
local lanes_key = provider_prefix .. 'lanes'
local live_since_bulk = whole(redis.call('HGET', lanes_key, 'live_since_bulk'), 0) or 0
local weights_key = provider_prefix .. 'weights'
-- Runs of ids taken, each {ids, kind, lane, source}, in claim order.
local chosen = {}
local taken = 0
-- A lane found with nothing claimable stays so for the rest of this script.
local exhausted = {}

-- Drops `entry` from `ring`: its list is empty (or gone).
local function leave_ring(ring, entry, lane, source)
  redis.call('LREM', ring, 1, entry)
  redis.call('HDEL', lanes_key, 'turn:' .. entry)
  redis.call('SREM', prefix .. 'sources', lane .. ':' .. source)
end

-- Up to `want` ids from the head entry of `lane`'s ring with claimable work, no more than
-- what is left of that source's turn, with their kind and source; nil when there are none.
local function take(lane, want)
  if exhausted[lane] then return nil end
  local ring = provider_prefix .. 'ring:' .. lane
  local entries = redis.call('LLEN', ring)
  for _ = 1, entries do
    local entry = redis.call('LINDEX', ring, 0)
    if not entry then break end
    local bar = string.find(entry, '|', 1, true)
    local k = bar and string.sub(entry, 1, bar - 1)
    local source = bar and string.sub(entry, bar + 1)
    if not k or not ID_PREFIX[k] then
      redis.call('LREM', ring, 1, entry)
    elseif not enabled[k] or paused[k] then
      redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
    else
      use_kind(k)
      local list = ready_list(lane, source)
      local turn = 'turn:' .. entry
      local weight = whole(redis.call('HGET', weights_key, source), 1) or 1
      local used = whole(redis.call('HGET', lanes_key, turn), 0) or 0
      if weight < 1 then weight = 1 end
      -- The only entry of its ring takes turn after turn: the whole claim can come from it.
      local count = want
      if entries > 1 then count = math.max(1, math.min(want, weight - used)) end
      local ids = redis.pcall('LPOP', list, string.format('%d', count))
      if type(ids) == 'table' and ids.err then
        set_aside(list, 'list')
        ids = false
      end
      if not ids then
        leave_ring(ring, entry, lane, source)
      else
        if redis.call('LLEN', list) == 0 then
          leave_ring(ring, entry, lane, source)
        else
          -- Its turn is counted on (a ring of one too, should another source join); a turn
          -- ended moves the entry to the back (a ring of one onto itself).
          local into_turn = (used + #ids) % weight
          if into_turn == 0 then
            redis.call('HDEL', lanes_key, turn)
          else
            redis.call('HSET', lanes_key, turn, string.format('%d', into_turn))
          end
          if used + #ids >= weight then redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT') end
        end
        return ids, k, source
      end
    end
  end
  exhausted[lane] = true
  return nil
end

while taken < room do
  local left = room - taken
  -- Bulk, when owed, gets one job; live runs until bulk is owed again.
  local owed = live_per_bulk > 0 and live_since_bulk >= live_per_bulk
  local lane, want = 'live', left
  if owed then
    lane, want = 'bulk', 1
  elseif live_per_bulk > 0 then
    want = math.min(left, live_per_bulk - live_since_bulk)
  end
  local ids, k, source = take(lane, want)
  if not ids then
    -- The first lane has nothing: the other takes what is left (the first stays empty for
    -- the rest of this script, so taking one at a time would choose the same).
    lane = owed and 'live' or 'bulk'
    ids, k, source = take(lane, left)
  end
  if not ids then break end
  if lane == 'live' then
    live_since_bulk = live_since_bulk + #ids
  else
    live_since_bulk = 0
  end
  chosen[#chosen + 1] = {ids, k, lane, source}
  taken = taken + #ids
end
redis.call('HSET', lanes_key, 'live_since_bulk', string.format('%d', live_since_bulk))

-- 5. Claim them. A job of a cancelled batch is cancelled instead; a record that cannot be
-- used is dead-lettered; each job claimed takes the next request slot. Each run's pending
-- entries are read and removed, and its leases written, with one command each.
-- The reply: its head (four values, filled in at the end), then 12 values per job.
local out = {0, 0, 0, now_text}
local width = 4
local n = 0
local cancelled_sources = {}
local started = {}
local function batch_cancelled(source)
  if cancelled_sources[source] == nil then
    local state = redis.call('HGET', provider_prefix .. 'source:' .. source, 'state')
    cancelled_sources[source] = state == 'cancelled'
  end
  return cancelled_sources[source]
end

local position = 0
local lease_deadline = string.format('%d', now + lease_ms)
-- Every fresh job's record starts with the same history line.
local first_running = history_line('running', 'attempt', '1')
-- An id listed twice (a ready list may hold a stale copy) is claimed once: its pending
-- entry was read for the whole run, before its first copy took it.
local seen = {}
for _, run in ipairs(chosen) do
  local ids, k, lane, source = run[1], run[2], run[3], run[4]
  use_kind(k)
  local entries = redis.call('HMGET', prefix .. 'pending', unpack(ids))
  local unpended = {}
  local leases = {}
  local cancelled = batch_cancelled(source)
  for j, id in ipairs(ids) do
    position = position + 1
    local key = job_key(id)
    local token = token_prefix .. ':' .. position
    local entry = entries[j]
    local row = nil
    if seen[id] then
      -- Its first copy decided.
    elseif cancelled then
      -- Its dependents (in its batch too) are cancelled when the sweeper re-checks them.
      cancel_job(id, entry, source, retention)
    elseif entry then
      local p = parse_pending(entry)
      unpended[#unpended + 1] = id
      -- A record is a listpack: each field set or read is found by a scan from its head.
      -- The fields the acknowledgement reads and writes come first. A fresh job writes no
      -- `parent` or `run_at_ms`: absent reads as no parent, and `run_at_ms` is read only in
      -- the scheduled states, which write it. Nor `updated_ms`: `started_ms` stands for it
      -- (see last_change in job_rows.lua).
      redis.call('HSET', key, 'token', token, 'state', 'running',
        'history', first_running, 'idem', p[4], 'source', source,
        'payload', p[1], 'attempts', '1', 'max_attempts', p[2], 'created_ms', p[3],
        'started_ms', now_text, 'lane', lane)
      row = {id, p[1], '1', p[2], token, '0', '', '', '0', p[3]}
    else
      local f = read_job(id, 'state', 'payload', 'attempts', 'max_attempts',
        'uncertain', 'phase', 'code', 'code_failures', 'created_ms', 'history')
      if not f then
        dead_wrong_type(id, 'ready list')
      elseif not f[1] then
        dead_no_record(id, 'ready list')
      elseif f[1] == 'queued' then
        local attempts = whole(f[3], 0)
        if not attempts then
          dead_bad_field(id, 'attempts', 'a whole number')
        elseif not whole(f[4], nil) then
          dead_bad_field(id, 'max_attempts', 'a whole number')
        else
          attempts = string.format('%d', attempts + 1)
          redis.call('HSET', key, 'state', 'running', 'attempts', attempts, 'token', token,
            'started_ms', now_text,
            'history', history_with(f[10], history_line('running', 'attempt', attempts)))
          row = {id, f[2] or '', attempts, f[4], token, f[5] or '0', f[6] or '', f[7] or '',
            f[8] or '0', f[9] or now_text}
        end
      end
      -- Any other state: a stale ready entry for a job that has moved on; drop it.
    end
    seen[id] = true
    if row then
      -- Without a limit every job of the claim has the same lease deadline and no delay:
      -- formatted once, not per job.
      local delay, delay_text, deadline = 0, '0', lease_deadline
      if slot then
        delay = math.max(0, slot_time(slot, rate, guard) - now_us)
        delay_text = string.format('%d', delay)
        deadline = string.format('%d', now + math.floor(delay / 1000) + lease_ms)
        slot = slot_after(slot, rate)
      end
      leases[#leases + 1] = deadline
      leases[#leases + 1] = id
      stream_event(id, 'running', 'attempt', row[3])
      started[k] = (started[k] or 0) + 1
      n = n + 1
      -- `#out` searches for the table's end; a running count does not.
      for i = 1, 9 do out[width + i] = row[i] end
      out[width + 10] = lane
      out[width + 11] = delay_text
      out[width + 12] = row[10]
      width = width + 12
    end
  end
  if #unpended > 0 then redis.call('HDEL', prefix .. 'pending', unpack(unpended)) end
  if #leases > 0 then redis.call('ZADD', prefix .. 'leased', unpack(leases)) end
end
if n > 0 then
  trim_events()
  for k, count in pairs(started) do
    redis.pcall('HINCRBY', provider_prefix .. k .. ':counts', 'started', string.format('%d', count))
  end
  if slot then count_slots_used(slot_key, n) end
end
-- wait_ms: 0 after a claim, so the caller claims again at once; else how long it may sleep.
-- Out of slots, it is the time until the next one comes within reach (also after a claim).
local held_back = cooldown > 0
if slot then
  write_slot(slot_key, slot, now_us, rate, guard)
  local next_at = slot_time(slot, rate, guard)
  if next_at > now_us + lead then
    held_back = true
    wait = math.min(wait, math.ceil((next_at - lead - now_us) / 1000))
  end
end
if n > 0 and not held_back then wait = 0 end
if wait < 0 then wait = 0 end

out[1], out[2], out[3] = wait, held_back and 1 or 0, n
return out
