"""The Lua scripts of the Redis limit store; they mirror base.py and memory.py.

Rate-limit keys ``gw:rl:<scope>`` are hashes with fields ``r<bucket>`` and
``t<bucket>`` (requests and tokens counted in that unix second); dead fields are
dropped whenever a script reads the hash, and each write refreshes a TTL of about
two windows. Budget keys ``gw:bud:<slot key>`` are hashes ``spent`` / ``reserved``
and one field ``l:<lease id>`` per live lease (the amount it holds); beside each, a
sorted set ``gw:bud:<slot key>:leases`` of lease ids scored by expiry (Redis time).
Every script that reads a slot first prunes its expired leases (ZRANGEBYSCORE up to
now: nothing to do in the usual case), so a reservation whose holder died is released
without a sweeper and without another round trip. Slots come in KEYS as (hash, leases)
pairs.

Lua numbers are doubles, exact only below 2**53 units (about $900k), so money never
passes through them: Redis adds the decimal strings as 64-bit integers (HINCRBY), and
comparisons split each string into 9-digit halves that stay exact (``over``).
"""

from __future__ import annotations

from .base import NEVER, WINDOW_S

_CLOCK = f"""
if redis.replicate_commands then redis.replicate_commands() end  -- TIME before writes (Redis < 5)
local W, NEVER = {WINDOW_S}, {NEVER}
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[1])  -- ARGV[1]: test-only offset
local cur = math.floor(now)
local clock = string.format('%.17g', now)
"""

_RATE_FNS = """
-- the live buckets {bucket, requests, tokens} of a window, oldest first; drops dead fields
local function live(key)
  local flat = redis.call('HGETALL', key)
  local rows, by, dead = {}, {}, {}
  for i = 1, #flat, 2 do
    local b = tonumber(string.sub(flat[i], 2))
    if b > cur - W and b <= cur then
      local row = by[b]
      if not row then
        row = {b, 0, 0}
        by[b], rows[#rows + 1] = row, row
      end
      local col = (string.sub(flat[i], 1, 1) == 'r') and 2 or 3
      row[col] = tonumber(flat[i + 1])
    else
      dead[#dead + 1] = flat[i]
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  table.sort(rows, function(a, b) return a[1] < b[1] end)
  return rows
end
local function view(rows, rpm, tpm, tokens)
  local req, tok, oldr, oldt = 0, 0, -1, -1
  for _, row in ipairs(rows) do
    req, tok = req + row[2], tok + row[3]
    if oldr < 0 and row[2] > 0 then oldr = row[1] end
    if oldt < 0 and row[3] > 0 then oldt = row[1] end
  end
  local function free_at(col, need)
    local freed = 0
    for _, row in ipairs(rows) do
      freed = freed + row[col]
      if freed >= need then return row[1] end
    end
    return NEVER
  end
  local fr, ft = -1, -1
  if rpm and req + 1 > rpm then fr = free_at(2, req + 1 - rpm) end
  if tpm and tok + tokens > tpm then ft = free_at(3, tok + tokens - tpm) end
  return {req, tok, oldr, oldt, fr, ft}
end
-- the views of windows keys[i], whose rpm/tpm are ARGV[at + 2i - 1], ARGV[at + 2i]
local function rate_views(keys, tokens, at)
  local views, refused = {}, false
  for i, key in ipairs(keys) do
    local v = view(live(key), tonumber(ARGV[at + 2 * i - 1]), tonumber(ARGV[at + 2 * i]), tokens)
    if v[5] ~= -1 or v[6] ~= -1 then refused = true end
    views[i] = v
  end
  return views, refused
end
local function count(keys, tokens, ttl)
  for _, key in ipairs(keys) do
    redis.call('HINCRBY', key, 'r' .. cur, 1)
    redis.call('HINCRBY', key, 't' .. cur, tokens)
    redis.call('EXPIRE', key, ttl)
  end
end
"""

# KEYS windows; ARGV offset, tokens, ttl, then rpm_i, tpm_i ('' = None) per key
# -> {current bucket, now, {requests, tokens, oldest_r, oldest_t, free_r, free_t} per key}
# (-1 = none; free_* is set only when that kind refuses)
HIT = _CLOCK + _RATE_FNS + """
local views, refused = rate_views(KEYS, tonumber(ARGV[2]), 3)
if not refused then count(KEYS, ARGV[2], ARGV[3]) end
return {cur, string.format('%.17g', now), views}
"""

_ADJUST_FN = """
local function adjust(keys, bucket, delta, ttl)
  local b = tonumber(bucket)
  if b <= cur - W or b > cur then return 0 end  -- already out of the window
  local field = 't' .. bucket
  for _, key in ipairs(keys) do
    local n = math.max(0, tonumber(redis.call('HGET', key, field) or '0') + tonumber(delta))
    redis.call('HSET', key, field, string.format('%d', n))
    redis.call('EXPIRE', key, ttl)
  end
  return 1
end
"""

# KEYS windows; ARGV offset, bucket, delta, ttl
ADJUST = _CLOCK + _ADJUST_FN + "return adjust(KEYS, ARGV[2], ARGV[3], ARGV[4])"

_MONEY = """
local HALF = 1000000000  -- 9 digits: a half of any int64 and sums of a few stay exact
local function split(s)  -- a non-negative decimal string (or false: absent) -> hi, lo
  if not s then return 0, 0 end
  local n = #s
  if n <= 9 then return 0, tonumber(s) end
  return tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8))
end
local function over(a, b, c, limit)  -- a + b + c > limit, exactly
  local ah, al = split(a)
  local bh, bl = split(b)
  local ch, cl = split(c)
  local lh, ll = split(limit)
  local lo = al + bl + cl
  local hi = ah + bh + ch + math.floor(lo / HALF)
  lo = lo % HALF
  return hi > lh or (hi == lh and lo > ll)
end
local function expire(key, ttl)
  if ttl ~= '' then redis.call('EXPIRE', key, ttl) end
end
"""

_LEASE_FNS = """
local function release(key, amount)  -- reserved -= amount (a decimal string), never below 0
  if amount == '0' then return end
  if over(amount, '0', '0', redis.call('HGET', key, 'reserved') or '0') then
    redis.call('HSET', key, 'reserved', '0')
  else
    redis.call('HINCRBY', key, 'reserved', '-' .. amount)
  end
end
-- drop the slot's leases that expired by now, releasing what they held; at most 1000 a
-- step (a backlog goes at the next steps; until then the slot is only stricter)
local function prune(key, leases)
  local dead = redis.call('ZRANGEBYSCORE', leases, '-inf', clock, 'LIMIT', 0, 1000)
  if #dead == 0 then return end
  local fields = {}
  for i, id in ipairs(dead) do fields[i] = 'l:' .. id end
  local amounts = redis.call('HMGET', key, unpack(fields))
  for i = 1, #dead do
    if amounts[i] then release(key, amounts[i]) end
  end
  redis.call('HDEL', key, unpack(fields))
  redis.call('ZREM', leases, unpack(dead))
end
-- release what the lease holds; nothing if it already expired (pruned) or is unknown
local function release_lease(key, leases, lease)
  if lease == '' then return end
  local amount = redis.call('HGET', key, 'l:' .. lease)
  if amount then
    release(key, amount)
    redis.call('HDEL', key, 'l:' .. lease)
  end
  redis.call('ZREM', leases, lease)
end
local function slot_pairs(keys, from)  -- KEYS[from..] as {hash, leases} pairs
  local out = {}
  for i = from, #keys, 2 do out[#out + 1] = {keys[i], keys[i + 1]} end
  return out
end
"""

_BUDGET_FNS = """
local function unseeded(slots)
  local out = {}
  for i, s in ipairs(slots) do
    if redis.call('HEXISTS', s[1], 'spent') == 0 then out[#out + 1] = i end
  end
  return out
end
-- slot i has limit, blocking ('1'/'0'), ttl ('' = keep) at ARGV[at + 3i - 2 .. at + 3i]
local function refusal(slots, amount, at)  -- the first blocking slot amount would overfill, or 0
  for i, s in ipairs(slots) do
    prune(s[1], s[2])
    if ARGV[at + 3 * i - 1] == '1' then
      local v = redis.call('HMGET', s[1], 'spent', 'reserved')
      if over(v[1], v[2], amount, ARGV[at + 3 * i - 2]) then return i end
    end
  end
  return 0
end
local function hold(slots, amount, lease, lease_s, at)  -- reserve amount on every slot, under one lease
  local expiry = string.format('%.17g', now + tonumber(lease_s))
  for i, s in ipairs(slots) do
    local ttl = ARGV[at + 3 * i]
    redis.call('HINCRBY', s[1], 'reserved', amount)
    if amount ~= '0' then
      redis.call('HSET', s[1], 'l:' .. lease, amount)
      redis.call('ZADD', s[2], expiry, lease)
      expire(s[2], ttl)
    end
    expire(s[1], ttl)
  end
end
"""

# KEYS slot pairs; ARGV offset, amount, lease id, lease_s, then limit_i, blocking_i
# ('1'/'0'), ttl_i ('' = keep) per slot -> {1, 0} reserved, or {0, i}: slot i would be exceeded
RESERVE = _CLOCK + _MONEY + _LEASE_FNS + _BUDGET_FNS + """
local slots = slot_pairs(KEYS, 1)
local i = refusal(slots, ARGV[2], 4)
if i > 0 then return {0, i} end
hold(slots, ARGV[2], ARGV[3], ARGV[4], 4)
return {1, 0}
"""

# Admission in one step, all or nothing: rate limits (HIT) and the budget
# reservation (RESERVE), counted only if neither refuses. Unseeded slots come first:
# {-1, {i, ...}} and nothing else happens, so the caller seeds them and asks again.
# KEYS windows..., slot pairs...; ARGV offset, tokens, rate ttl, number of windows,
# amount, lease id, lease_s, rpm_i, tpm_i per window, then limit_j, blocking_j, ttl_j per slot
# -> {1 admitted | 0 refused, current bucket, now, views (as HIT), refusing slot or 0}
ADMIT = _CLOCK + _MONEY + _RATE_FNS + _LEASE_FNS + _BUDGET_FNS + """
local nw = tonumber(ARGV[4])
local windows = {}
for i = 1, nw do windows[i] = KEYS[i] end
local slots = slot_pairs(KEYS, nw + 1)
local missing = unseeded(slots)
if #missing > 0 then return {-1, missing} end
local views, refused = rate_views(windows, tonumber(ARGV[2]), 7)
if refused then return {0, cur, clock, views, 0} end
local at = 7 + 2 * nw
local j = refusal(slots, ARGV[5], at)
if j > 0 then return {0, cur, clock, views, j} end
count(windows, ARGV[2], ARGV[3])
hold(slots, ARGV[5], ARGV[6], ARGV[7], at)
return {1, cur, clock, views, 0}
"""

_SETTLE_FN = """
local function settle(slots, lease, actual, ttls)  -- -> {spent, reserved} per slot
  if string.sub(actual, 1, 1) == '-' then actual = '0' end  -- spend never goes down
  local out = {}
  for i, s in ipairs(slots) do
    if redis.call('EXISTS', s[1]) == 1 then  -- a forgotten or expired slot is re-seeded from the ledger
      prune(s[1], s[2])
      release_lease(s[1], s[2], lease)
      if redis.call('HEXISTS', s[1], 'spent') == 1 then  -- only a seeded spent grows
        redis.call('HINCRBY', s[1], 'spent', actual)
      end
      expire(s[1], ttls[i])
      expire(s[2], ttls[i])
    end
    out[i] = redis.call('HMGET', s[1], 'spent', 'reserved')
  end
  return out
end
"""

# KEYS slot pairs; ARGV offset, lease id ('' = none), actual, then ttl_i per slot
# -> {spent, reserved} per slot
SETTLE = _CLOCK + _MONEY + _LEASE_FNS + _SETTLE_FN + """
return settle(slot_pairs(KEYS, 1), ARGV[2], ARGV[3], {unpack(ARGV, 4)})
"""

# A request's whole settlement in one round trip: ADJUST of its windows (unless
# bucket is '') and SETTLE of its slots.
# KEYS windows..., slot pairs...; ARGV offset, bucket, delta, rate ttl, number of
# windows, lease id, actual, then ttl_i per slot -> SETTLE's result
SETTLE_ALL = _CLOCK + _MONEY + _ADJUST_FN + _LEASE_FNS + _SETTLE_FN + """
local nw = tonumber(ARGV[5])
local windows = {}
for i = 1, nw do windows[i] = KEYS[i] end
if ARGV[2] ~= '' and nw > 0 then adjust(windows, ARGV[2], ARGV[3], ARGV[4]) end
return settle(slot_pairs(KEYS, nw + 1), ARGV[6], ARGV[7], {unpack(ARGV, 8)})
"""

# A long holder keeps its lease: on every slot that still holds it (after pruning, so an
# expired lease is never brought back) its expiry becomes max(expiry, now + lease_s).
# KEYS slot pairs; ARGV offset, lease id, lease_s, then ttl_i per slot -> 1 renewed, 0 gone
RENEW = _CLOCK + _MONEY + _LEASE_FNS + """
local expiry = now + tonumber(ARGV[3])
local renewed = 0
for i, s in ipairs(slot_pairs(KEYS, 1)) do
  prune(s[1], s[2])
  if redis.call('HEXISTS', s[1], 'l:' .. ARGV[2]) == 1 then
    local held = tonumber(redis.call('ZSCORE', s[2], ARGV[2]) or '0')
    if expiry > held then
      redis.call('ZADD', s[2], 'XX', string.format('%.17g', expiry), ARGV[2])
    end
    expire(s[1], ARGV[3 + i])
    expire(s[2], ARGV[3 + i])
    renewed = 1
  end
end
return renewed
"""

# KEYS slot pairs; ARGV offset -> {spent, reserved} per slot, expired leases dropped first
USAGE = _CLOCK + _MONEY + _LEASE_FNS + """
local out = {}
for i, s in ipairs(slot_pairs(KEYS, 1)) do
  prune(s[1], s[2])
  out[i] = redis.call('HMGET', s[1], 'spent', 'reserved')
end
return out
"""

# KEYS slot hashes; ARGV spent_i, ttl_i per key: SETNX semantics for each slot's spent
SEED = _MONEY + """
for i, key in ipairs(KEYS) do
  if redis.call('HSETNX', key, 'spent', ARGV[2 * i - 1]) == 1 then expire(key, ARGV[2 * i]) end
end
return 1
"""
