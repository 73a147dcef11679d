-- Idempotency keys, for every queue script: prepended after common.lua (see scripts.rs),
-- so each script can claim, read, expire or release a key. No keys or arguments of its own.

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

-- Whether this queue may hold keys written before the buckets: not when it is marked, nor
-- when nothing was ever enqueued into it (no `counts`).
local function may_hold_older_idem()
  if older_idem[prefix] == nil then
    older_idem[prefix] = redis.pcall('GET', prefix .. 'idem-format') ~= '2'
      and redis.call('EXISTS', prefix .. 'counts') == 1
  end
  return older_idem[prefix]
end

-- Marks this queue as never holding keys written before the buckets, if it is new.
local function mark_new_idem_format()
  if not may_hold_older_idem() and redis.call('EXISTS', prefix .. 'idem-format') == 0 then
    redis.call('SET', prefix .. 'idem-format', '2')
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

-- A job's idempotency key (`idem`, its record's field) expires `retention` seconds from now
-- (with the record), or never (`retention` nil: the job runs again). Only a key written
-- before the buckets (its hash in hex) has a TTL of its own: a bucket entry lives with its
-- job and needs nothing.
local function idem_expire(idem, retention)
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
