-- Replaces an idempotency key's value (`<first job id>|<payload digest>`) only if it still
-- holds what was read, keeping its expiry, so `rekey` never overwrites a key claimed anew.
-- KEYS[1] = the idempotency key. ARGV[1] = the value read, ARGV[2] = the new value.
-- Returns 1 when written, 0 when the key had changed.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
