-- Lists the dead-letter set, oldest first: ids ARGV[5] .. ARGV[6] (ZRANGE indexes). A set of
-- the wrong type is moved aside first (check_queue_keys), so listing always works.
-- Returns the ids.
check_queue_keys()
return redis.call('ZRANGE', prefix .. 'dead', ARGV[5], ARGV[6])
