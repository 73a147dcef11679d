-- Reads idempotency entries of this queue, writing nothing: for `check_keys` and
-- `job_for_idempotency_key`. ARGV[5..] = the keys' hashes (16 bytes each; see idem_bucket
-- in idempotency.lua). Returns, per hash, two values: the first job's id and its payload digest
-- (16 bytes, or '' when it was stored without one); two empty strings when the key is
-- unused (no entry, one whose job no longer exists, or a bucket of the wrong type). Keys written
-- before the buckets are read too (older_idem_value in idempotency.lua).
local out = {}
for i = 5, #ARGV do
  local value = redis.pcall('HGET', idem_bucket(ARGV[i]), ARGV[i])
  local id, digest = '', ''
  if type(value) ~= 'string' then value = older_idem_value(ARGV[i]) end
  if value then id, digest = idem_parse(value) end
  if id ~= '' and not idem_holder_lives(id) then id, digest = '', '' end
  out[#out + 1] = id
  out[#out + 1] = digest
end
return out
