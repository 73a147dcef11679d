-- Replaces one field of a hash only if it still holds the value that was read, so a value
-- re-sealed by `rekey` (or an idempotency entry re-digested) never overwrites one a job
-- wrote meanwhile, or a key claimed anew.
-- KEYS[1] = the hash. ARGV[1] = field, ARGV[2] = the value read, ARGV[3] = the new value.
-- Returns 1 when written, 0 when the field had changed.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
