-- Pauses (ARGV[5] = '1') or resumes ('0') claiming this kind, in every worker at once: its
-- jobs stay queued meanwhile. Returns 1 when the state changed.
check_queue_keys('paused-kinds', 'notify')
local set = provider_prefix .. 'paused-kinds'
local changed
if ARGV[5] == '1' then
  changed = redis.call('SADD', set, kind)
else
  changed = redis.call('SREM', set, kind)
  wake()
end
return changed
