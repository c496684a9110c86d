package manager

import (
	"crypto/sha1"
	"encoding/hex"
)

// The Lua scripts of the Redis engine (docs/redis.md). A script is atomic
// on the server, which is what makes CompareAndSwap, Update's conditional
// store (and so an Add of a narrow type), and the lock's lease exact. Scripts on one object touch only keys with the object's
// hash tag, so a Redis Cluster runs them on one node.
//
// Scripts on a dict's entry or a value see the same three functions, for a
// hash field (KEYS[1], ARGV[1]) or a string key (KEYS[1]), so that each is
// written once.

type redisScript struct{ src, sha string }

func newScript(src string) *redisScript {
	sum := sha1.Sum([]byte(src))
	return &redisScript{src: src, sha: hex.EncodeToString(sum[:])}
}

const (
	hashPrelude = `local function get() return redis.call('HGET', KEYS[1], ARGV[1]) end
local function set(v) return redis.call('HSET', KEYS[1], ARGV[1], v) end
`
	stringPrelude = `local function get() return redis.call('GET', KEYS[1]) end
local function set(v) return redis.call('SET', KEYS[1], v) end
`
	// now is the server's clock in milliseconds.
	nowPrelude = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

	// ARGV[2] the old value, ARGV[3] the new; ARGV[4] '1' when a missing
	// entry matches (a Value's old value is a zero value).
	casBody = `local c = get()
if c == ARGV[2] or (c == false and ARGV[4] == '1') then set(ARGV[3]) return 1 end
return 0`

	// ARGV[2] the new value, ARGV[3] the version expected: the first 15
	// hex digits of the SHA-1 of the stored bytes, or '' for none stored.
	setIfBody = `local c = get()
if (c == false and ARGV[3] == '') or (c and string.sub(redis.sha1hex(c), 1, 15) == ARGV[3]) then set(ARGV[2]) return 1 end
return 0`
)

var (
	hashCAS   = newScript(hashPrelude + casBody)
	stringCAS = newScript(stringPrelude + casBody)
	hashSetIf = newScript(hashPrelude + setIfBody)
	strSetIf  = newScript(stringPrelude + setIfBody)

	hashSetDefault = newScript(`if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return ARGV[2] end
return redis.call('HGET', KEYS[1], ARGV[1])`)
	hashPop = newScript(`local c = redis.call('HGET', KEYS[1], ARGV[1])
if c then redis.call('HDEL', KEYS[1], ARGV[1]) end
return c`)

	// Lists: Python's indexes, normalized on the server. pushTail puts
	// back a list's tail in chunks, within Lua's stack.
	listPrelude = `local n = redis.call('LLEN', KEYS[1])
local function pushTail(tail)
  for s = 1, #tail, 1000 do redis.call('RPUSH', KEYS[1], unpack(tail, s, math.min(s + 999, #tail))) end
end
`
	listInsert = newScript(listPrelude + `local i = tonumber(ARGV[1])
if i < 0 then i = math.max(i + n, 0) end
if i >= n then return redis.call('RPUSH', KEYS[1], ARGV[2]) end
if i == 0 then return redis.call('LPUSH', KEYS[1], ARGV[2]) end
local tail = redis.call('LRANGE', KEYS[1], i, -1)
redis.call('LTRIM', KEYS[1], 0, i - 1)
redis.call('RPUSH', KEYS[1], ARGV[2])
pushTail(tail)
return n + 1`)
	listPop = newScript(listPrelude + `local i = tonumber(ARGV[1])
if n == 0 then return redis.error_reply('INDEX pop from empty list') end
if i < 0 then i = i + n end
if i < 0 or i >= n then return redis.error_reply('INDEX pop index out of range') end
if i == n - 1 then return redis.call('RPOP', KEYS[1]) end
if i == 0 then return redis.call('LPOP', KEYS[1]) end
local v = redis.call('LINDEX', KEYS[1], i)
local tail = redis.call('LRANGE', KEYS[1], i + 1, -1)
redis.call('LTRIM', KEYS[1], 0, i - 1)
pushTail(tail)
return v`)
	listSlice = newScript(listPrelude + `local function clip(i)
  if i < 0 then i = i + n end
  return math.min(math.max(i, 0), n)
end
local i, j = clip(tonumber(ARGV[1])), clip(tonumber(ARGV[2]))
if j <= i then return {} end
return redis.call('LRANGE', KEYS[1], i, j - 1)`)

	// Locks: a hash of owner (the holding client's token), deadline (the
	// lease's end, server milliseconds) and fence (grants so far).
	// ARGV[1] the client's token, ARGV[2] the lease in milliseconds.
	// Acquire answers {0, ms left} while the lock is held, {1, fence}
	// for a grant and {2, fence} for a grant after a holder whose lease
	// ran out.
	lockAcquire = newScript(nowPrelude + `local o = redis.call('HMGET', KEYS[1], 'owner', 'deadline')
local dead = 0
if o[1] then
  local left = tonumber(o[2]) - now
  if left > 0 then return {0, left} end
  dead = 1
end
local f = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'deadline', now + tonumber(ARGV[2]))
return {1 + dead, f}`)
	// ARGV[3] the channel that wakes waiters.
	lockRelease = newScript(`if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return redis.error_reply('NOTOWNER lock not held by this client')
end
redis.call('HDEL', KEYS[1], 'owner', 'deadline')
redis.call('PUBLISH', ARGV[3], '1')
return 1`)
	lockRenew = newScript(nowPrelude + `if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'deadline', now + tonumber(ARGV[2]))
return 1`)
	lockFence = newScript(nowPrelude + `local o = redis.call('HMGET', KEYS[1], 'owner', 'deadline', 'fence')
if o[1] ~= ARGV[1] or tonumber(o[2]) <= now then
  return redis.error_reply('NOTOWNER lock not held by this client')
end
return tonumber(o[3])`)
	lockLocked = newScript(nowPrelude + `local o = redis.call('HMGET', KEYS[1], 'owner', 'deadline')
if o[1] and tonumber(o[2]) > now then return 1 end
return 0`)

	eventSet = newScript(`redis.call('SET', KEYS[1], '1')
redis.call('PUBLISH', ARGV[1], '1')
return 1`)

	// Queues: KEYS[1] the items, KEYS[2] the capacity, KEYS[3] the
	// consumers (token -> lease end), KEYS[4] this client's pending list;
	// ARGV[1] the token, ARGV[2] the lease, ARGV[3] the prefix of
	// pending lists' keys.
	queuePut = newScript(`local c = tonumber(redis.call('GET', KEYS[2]) or '0')
if c > 0 and redis.call('LLEN', KEYS[1]) >= c then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
return 1`)
	// queueTake renews this consumer's lease, returns the items of
	// consumers whose lease ended to the head of the queue, in order, and
	// moves the first item, if any, to this consumer's pending list.
	queueTake = newScript(nowPrelude + `redis.call('HSET', KEYS[3], ARGV[1], now + tonumber(ARGV[2]))
local cs = redis.call('HGETALL', KEYS[3])
for i = 1, #cs, 2 do
  if cs[i] ~= ARGV[1] and tonumber(cs[i + 1]) < now then
    local p = ARGV[3] .. cs[i]
    while redis.call('LMOVE', p, KEYS[1], 'RIGHT', 'LEFT') do end
    redis.call('HDEL', KEYS[3], cs[i])
  end
end
return redis.call('LMOVE', KEYS[1], KEYS[4], 'LEFT', 'RIGHT')`)

	// Remove: KEYS the object's keys; its consumers' pending lists are
	// found through KEYS[3], the consumers hash, ARGV[1] their prefix.
	removeObject = newScript(`local n = 0
for _, c in ipairs(redis.call('HKEYS', KEYS[3])) do n = n + redis.call('DEL', ARGV[1] .. c) end
return n + redis.call('DEL', unpack(KEYS))`)

	redisScripts = []*redisScript{hashCAS, stringCAS, hashSetIf, strSetIf,
		hashSetDefault, hashPop, listInsert, listPop, listSlice,
		lockAcquire, lockRelease, lockRenew, lockLocked, lockFence, eventSet, queuePut, queueTake, removeObject}
)
