-- Reads one job for `status`, in one step (a fetch cannot move it from `pending` to its
-- record in between). Writes nothing. ARGV[5] = id.
-- Returns {'record', field, value, ...}, {'pending', entry}, {'missing'}, or
-- {'malformed', what is wrong} when the record is not a hash.
local id = ARGV[5]
local key = job_key(id)
local fields = redis.pcall('HGETALL', key)
if fields.err then
  return {'malformed', 'key ' .. key .. ' is a ' .. redis.call('TYPE', key)['ok'] .. ', not a hash'}
end
if #fields > 0 then
  local out = {'record'}
  for _, v in ipairs(fields) do out[#out + 1] = v end
  return out
end
local entry = redis.pcall('HGET', prefix .. 'pending', id)
if type(entry) == 'string' then return {'pending', entry} end
return {'missing'}
