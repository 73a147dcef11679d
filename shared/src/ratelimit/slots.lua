-- Request slots of one rate limit, prepended to the scripts that hand them out (gcra.lua,
-- the queue's fetch.lua). Times are microseconds on Redis's clock.
--
-- A whole rate (`rate` requests a second, 1 or more) gets exactly `rate` slots in each
-- second, spread evenly over its first (1 s - guard): a request sent up to `guard` late
-- still lands in its own second at a provider that counts per calendar second, no sliding
-- second holds more than `rate`, and every slot is used, none lost to a safety margin.
-- Any other rate gets slots 1/rate apart. The state, in the limit's slot key, is the next
-- free slot: "<second>:<index>" (whole rates) or "<time>" (others).

-- The first free slot at or after `t`, as a state {sec, index} or {time}.
local function slot_at_or_after(t, rate, guard)
  if rate >= 1 and rate == math.floor(rate) then
    local sec = math.floor(t / 1000000)
    local i = math.ceil((t - sec * 1000000) * rate / (1000000 - guard))
    if i >= rate then return {sec + 1, 0} end
    return {sec, i}
  end
  return {t}
end

-- When slot `s` is.
local function slot_time(s, rate, guard)
  if s[2] then return s[1] * 1000000 + math.floor(s[2] * (1000000 - guard) / rate) end
  return s[1]
end

-- The slot after `s`.
local function slot_after(s, rate)
  if s[2] then
    if s[2] + 1 >= rate then return {s[1] + 1, 0} end
    return {s[1], s[2] + 1}
  end
  return {s[1] + math.floor(1000000 / rate)}
end

-- Reads the next free slot from `key`, no earlier than `now_us`. A value of another shape
-- (poison, or a rate that changed kind) starts afresh.
local function read_slot(key, now_us, rate, guard)
  local stored = redis.pcall('GET', key)
  if type(stored) == 'table' then
    redis.call('DEL', key)
    stored = false
  end
  local s = nil
  if type(stored) == 'string' then
    local colon = string.find(stored, ':', 1, true)
    local whole = rate >= 1 and rate == math.floor(rate)
    if colon and whole then
      s = {tonumber(string.sub(stored, 1, colon - 1)), tonumber(string.sub(stored, colon + 1))}
      if not s[1] or not s[2] then s = nil end
    elseif not colon and not whole then
      s = {tonumber(stored)}
      if not s[1] then s = nil end
    end
  end
  -- A slot already past is still used while its own second lasts (short of the guard): a
  -- worker that woke a little late sends at once, still within that second's count, and
  -- the slot is not lost. A slot of a second gone is.
  if s and slot_time(s, rate, guard) < now_us then
    local same_second = s[2] and s[1] == math.floor(now_us / 1000000)
      and now_us < (s[1] + 1) * 1000000 - guard
    if not same_second then s = nil end
  end
  if not s then return slot_at_or_after(now_us, rate, guard) end
  return s
end

-- Stores `s` as the next free slot, kept a little longer than it is ahead.
local function write_slot(key, s, now_us, rate, guard)
  local value
  if s[2] then
    value = string.format('%d:%d', s[1], s[2])
  else
    value = string.format('%d', s[1])
  end
  local ahead_ms = math.max(0, math.floor((slot_time(s, rate, guard) - now_us) / 1000))
  redis.call('SET', key, value, 'PX', string.format('%d', ahead_ms + 2000))
end

-- Counts `n` slots handed out of the limit whose slot key is `key`, in `<key>:used`: the
-- console reads how fast it grows to show the share of the limit in use. A key of the wrong
-- type only loses the count (pcall).
local function count_slots_used(key, n)
  redis.pcall('INCRBY', key .. ':used', string.format('%d', n))
end
