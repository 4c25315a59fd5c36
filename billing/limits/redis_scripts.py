"""The Lua scripts of the Redis limit store; they mirror base.py and memory.py.

Rate-limit keys ``gw:rl:<scope>`` are hashes with fields ``r<bucket>`` and
``t<bucket>`` (requests and tokens counted in that unix second); dead fields are
dropped whenever a script reads the hash, and each write refreshes a TTL of about
two windows. Budget keys ``gw:bud:<slot key>`` are hashes ``spent`` / ``reserved``.

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

_BUDGET_FNS = """
local function unseeded(keys)
  local out = {}
  for i, key in ipairs(keys) do
    if redis.call('HEXISTS', key, 'spent') == 0 then out[#out + 1] = i end
  end
  return out
end
-- slots keys[i] have limit, blocking ('1'/'0'), ttl ('' = keep) at ARGV[at + 3i - 2 .. at + 3i]
local function refusal(keys, amount, at)  -- the first blocking slot amount would overfill, or 0
  for i, key in ipairs(keys) do
    if ARGV[at + 3 * i - 1] == '1' then
      local v = redis.call('HMGET', key, 'spent', 'reserved')
      if over(v[1], v[2], amount, ARGV[at + 3 * i - 2]) then return i end
    end
  end
  return 0
end
local function reserve(keys, amount, at)
  for i, key in ipairs(keys) do
    redis.call('HINCRBY', key, 'reserved', amount)
    expire(key, ARGV[at + 3 * i])
  end
end
"""

# KEYS slots; ARGV amount, then limit_i, blocking_i ('1'/'0'), ttl_i ('' = keep) per key
# -> {1, 0} reserved, or {0, i}: slot i would be exceeded
RESERVE = _MONEY + _BUDGET_FNS + """
local i = refusal(KEYS, ARGV[1], 1)
if i > 0 then return {0, i} end
reserve(KEYS, ARGV[1], 1)
return {1, 0}
"""

# Admission in one step, all or nothing: rate limits (HIT) and the budget
# reservation (RESERVE), counted only if neither refuses. Unseeded slots come first:
# {-1, {i, ...}} and nothing else happens, so the caller seeds them and asks again.
# KEYS windows..., slots...; ARGV offset, tokens, rate ttl, number of windows, amount,
# rpm_i, tpm_i per window, then limit_j, blocking_j, ttl_j per slot
# -> {1 admitted | 0 refused, current bucket, now, views (as HIT), refusing slot or 0}
ADMIT = _CLOCK + _MONEY + _RATE_FNS + _BUDGET_FNS + """
local nw = tonumber(ARGV[4])
local windows, slots = {}, {}
for i, key in ipairs(KEYS) do
  if i <= nw then windows[#windows + 1] = key else slots[#slots + 1] = key end
end
local missing = unseeded(slots)
if #missing > 0 then return {-1, missing} end
local clock = string.format('%.17g', now)
local views, refused = rate_views(windows, tonumber(ARGV[2]), 5)
if refused then return {0, cur, clock, views, 0} end
local at = 5 + 2 * nw
local j = refusal(slots, ARGV[5], at)
if j > 0 then return {0, cur, clock, views, j} end
count(windows, ARGV[2], ARGV[3])
reserve(slots, ARGV[5], at)
return {1, cur, clock, views, 0}
"""

_SETTLE_FN = """
local function settle(keys, reserved, actual, ttls)  -- -> {spent, reserved} per key
  local out = {}
  for i, key in ipairs(keys) do
    if redis.call('EXISTS', key) == 1 then  -- a forgotten or expired slot is re-seeded from the ledger
      local v = redis.call('HMGET', key, 'spent', 'reserved')
      if over(reserved, '0', '0', v[2] or '0') then
        redis.call('HSET', key, 'reserved', '0')
      elseif reserved ~= '0' then
        redis.call('HINCRBY', key, 'reserved', '-' .. reserved)
      end
      if v[1] then redis.call('HINCRBY', key, 'spent', actual) end  -- only a seeded spent grows
      expire(key, ttls[i])
    end
    out[i] = redis.call('HMGET', key, 'spent', 'reserved')
  end
  return out
end
"""

# KEYS slots; ARGV reserved, actual, then ttl_i per key -> {spent, reserved} per key
SETTLE = _MONEY + _SETTLE_FN + "return settle(KEYS, ARGV[1], ARGV[2], {unpack(ARGV, 3)})"

# A request's whole settlement in one round trip: ADJUST of its windows (unless
# bucket is '') and SETTLE of its slots.
# KEYS windows..., slots...; ARGV offset, bucket, delta, rate ttl, number of windows,
# reserved, actual, then ttl_i per slot -> SETTLE's result
SETTLE_ALL = _CLOCK + _MONEY + _ADJUST_FN + _SETTLE_FN + """
local nw = tonumber(ARGV[5])
local windows, slots = {}, {}
for i, key in ipairs(KEYS) do
  if i <= nw then windows[#windows + 1] = key else slots[#slots + 1] = key end
end
if ARGV[2] ~= '' and nw > 0 then adjust(windows, ARGV[2], ARGV[3], ARGV[4]) end
return settle(slots, ARGV[6], ARGV[7], {unpack(ARGV, 8)})
"""

# KEYS slots; ARGV spent_i, ttl_i per key: SETNX semantics for each slot's spent
SEED = _MONEY + """
for i, key in ipairs(KEYS) do
  if redis.call('HSETNX', key, 'spent', ARGV[2 * i - 1]) == 1 then expire(key, ARGV[2 * i]) end
end
return 1
"""
