-- Replaces an idempotency entry's value (`<first job id>|<payload digest>`,
-- see idem_bucket in scripts/idempotency.lua) only if it still holds what was read, so `rekey`
-- never overwrites a key claimed anew. KEYS[1] = the entry's bucket (a hash).
-- ARGV[1] = the entry (the key's hash), ARGV[2] = the value read, ARGV[3] = the new value.
-- Returns 1 when written, 0 when the entry had changed.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
