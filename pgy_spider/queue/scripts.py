"""The run's Lua scripts: each step that must be atomic is one script.

Plain module (the sources only; :mod:`.member` registers them). Every script is safe to run
twice (redis-py retries a call whose answer was lost): a push is keyed by its first sequence
number, a settle or a hand-back acts only on entries this worker still owns, a lease is
taken only by whoever does not hold it already.

Why each one:

- :data:`JOIN`: a run is created once, with the identity of its seed sources; a process
  whose sources differ learns it before reading anything.
- :data:`LEASE`: the reader role, a key that expires unless its holder renews it.
- :data:`PUSH`: one batch of seeds read: the dedup check, ``XADD`` of the new notes, the
  counts of rejected, duplicate and fresh seeds, the rejected seeds' records and the new
  cursor, all or nothing. A reader that takes over from the cursor can never add or count
  a seed twice.
- :data:`SETTLE`: an entry settled by the worker that owns it: counted once, ``XACK`` and
  ``XDEL``. A worker whose entry was claimed by another counts nothing (``XACK`` alone
  would: it is group-wide).
- :data:`HANDBACK`: entries of a worker that stops gracefully go back to the stream at once
  (acknowledged, deleted and added again), for the others to take: all it owns, also those
  of a read the stop cut short.
- :data:`BEAT`: the signs of life: the heartbeat, and ``XCLAIM ... JUSTID`` of the worker's
  own pending entries (their idle time starts again, so a note in a long backoff or a 302
  pause is never taken away). Entries the worker does not know it holds (a reply lost on the
  way) are handed back.
- :data:`CLAIM`: entries of a worker that has shown no sign of life (neither heartbeat nor
  re-claim) for the claim time, taken over.

Entries are removed with ``XDEL`` once settled and the stream is never trimmed: Redis 7.0
drops pending entries that ``MAXLEN``/``MINID`` trims away, a silent seed loss.
"""

from __future__ import annotations

# KEYS: meta, stream, counts, rejects, beats, info, reader
# ARGV: sources ("" for a worker without seeds), created (ISO time), group
# -> {"exists", sources} | {"missing", ""} | {"created", sources}
JOIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', redis.call('HGET', KEYS[1], 'sources') or ''}
end
if ARGV[1] == '' then
  return {'missing', ''}
end
for i = 2, #KEYS do
  redis.call('DEL', KEYS[i])
end
redis.call('HSET', KEYS[1], 'sources', ARGV[1], 'created', ARGV[2], 'next_seq', '0',
  'version', '1')
redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[3], '0', 'MKSTREAM')
return {'created', ARGV[1]}
"""

# KEYS: reader, meta
# ARGV: me, lease ms -> 1 held (taken or renewed) | 0 held by another | -1 reading is done
LEASE = """
if redis.call('HGET', KEYS[2], 'reader_done') == '1' then
  return -1
end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: reader;  ARGV: me -> 1 released | 0 not the holder
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS: meta, reader, stream, counts, rejects, then one dedup bucket per valid seed
# ARGV: me, first seq, last seq, cursor ("" = unchanged), done (0/1), lease ms,
#       valid count, reject-reason count, record count,
#       then per valid seed: 12-byte ID, hex ID, seq, fresh (0/1);
#       then per reject reason: reason, count; then the rejected seeds' records (JSON)
# -> {"ok", outcomes} (one letter per valid seed: a added, d duplicate, f fresh)
#    | {"lost", ""} (not the lease holder) | {"stale", next seq} (not where the run is)
PUSH = """
local meta, lease, stream, counts, rejects = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local me, first, last = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', lease) ~= me then
  return {'lost', ''}
end
local next_seq = redis.call('HGET', meta, 'next_seq') or '0'
if next_seq ~= first then
  local done = redis.call('HGET', meta, 'last_push')
  if done then
    local sep = string.find(done, ':', 1, true)
    if string.sub(done, 1, sep - 1) == first then
      return {'ok', string.sub(done, sep + 1)}
    end
  end
  return {'stale', next_seq}
end
local valid, reasons, records = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local out = {}
local added, dups, fresh = 0, 0, 0
local a = 10
for i = 1, valid do
  if redis.call('HSETNX', KEYS[5 + i], ARGV[a], '') == 0 then
    out[i] = 'd'
    dups = dups + 1
  elseif ARGV[a + 3] == '1' then
    out[i] = 'f'
    fresh = fresh + 1
  else
    redis.call('XADD', stream, '*', 'n', ARGV[a + 1], 's', ARGV[a + 2])
    out[i] = 'a'
    added = added + 1
  end
  a = a + 4
end
for _ = 1, reasons do
  redis.call('HINCRBY', counts, 'rejected:' .. ARGV[a], ARGV[a + 1])
  a = a + 2
end
for _ = 1, records do
  redis.call('RPUSH', rejects, ARGV[a])
  a = a + 1
end
redis.call('HINCRBY', counts, 'seeds_read', tonumber(last) - tonumber(first) + 1)
redis.call('HINCRBY', counts, 'duplicates', dups)
redis.call('HINCRBY', counts, 'skipped_fresh', fresh)
redis.call('HINCRBY', counts, 'issued', added)
local outcomes = table.concat(out)
redis.call('HSET', meta, 'next_seq', tostring(tonumber(last) + 1),
  'last_push', first .. ':' .. outcomes)
if ARGV[4] ~= '' then
  redis.call('HSET', meta, 'cursor', ARGV[4])
end
if ARGV[5] == '1' then
  redis.call('HSET', meta, 'reader_done', '1')
  redis.call('DEL', lease)
else
  redis.call('PEXPIRE', lease, ARGV[6])
end
return {'ok', outcomes}
"""

# KEYS: stream, counts
# ARGV: group, me, then per entry: entry ID, kind (w written, f failed, d duplicate), reason
# -> {settled, late}: late = entries this worker no longer owns (nothing counted)
SETTLE = """
local stream, counts, group, me = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local settled, late = 0, 0
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if p[1] and p[1][2] == me then
    redis.call('XACK', stream, group, id)
    redis.call('XDEL', stream, id)
    local kind = ARGV[i + 1]
    if kind == 'w' then
      redis.call('HINCRBY', counts, 'notes_written', 1)
    elseif kind == 'f' then
      redis.call('HINCRBY', counts, 'failed:' .. ARGV[i + 2], 1)
    else
      redis.call('HINCRBY', counts, 'duplicates', 1)
    end
    settled = settled + 1
  else
    late = late + 1
  end
end
redis.call('HINCRBY', counts, 'settled', settled)
return {settled, late}
"""

# The body shared by HANDBACK and BEAT: give one owned entry back to the stream.
_GIVE_BACK = """
local function give_back(stream, group, id)
  local e = redis.call('XRANGE', stream, id, id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  if e[1] then
    redis.call('XADD', stream, '*', unpack(e[1][2]))
    return 1
  end
  return 0
end
"""

# KEYS: stream, counts;  ARGV: group, me -> entries handed back
# Every entry the stopping worker owns, also those it never saw (a read cut short by the
# stop delivered them without a reply).
HANDBACK = (
    _GIVE_BACK
    + """
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local n = 0
while true do
  local mine = redis.call('XPENDING', stream, group, '-', '+', 1000, me)
  if #mine == 0 then
    break
  end
  for _, p in ipairs(mine) do
    n = n + give_back(stream, group, p[1])
  end
end
redis.call('HINCRBY', KEYS[2], 'handed_back', n)
return n
"""
)

# KEYS: beats, info, stream, reader, meta, counts
# ARGV: group, me, claim ms, info (JSON), reader (0/1), then the entry IDs this worker holds
# -> {lost IDs, reader done (0/1), stream length, Redis time ms, lease holder ("" none)}
BEAT = (
    _GIVE_BACK
    + """
local beats, info, stream, lease, meta, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6]
local group, me, claim_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', beats, me, now)
redis.call('HSET', info, me, ARGV[4])
local known = {}
for i = 6, #ARGV do
  known[ARGV[i]] = true
end
local mine = redis.call('XPENDING', stream, group, '-', '+', #ARGV + 1000, me)
local refresh, owned, handed = {}, {}, 0
for _, p in ipairs(mine) do
  local id = p[1]
  if known[id] then
    refresh[#refresh + 1] = id
    owned[id] = true
  elseif tonumber(p[3]) >= claim_ms then
    handed = handed + give_back(stream, group, id)
  end
end
for i = 1, #refresh, 500 do
  local args = {'XCLAIM', stream, group, me, 0}
  for j = i, math.min(i + 499, #refresh) do
    args[#args + 1] = refresh[j]
  end
  args[#args + 1] = 'JUSTID'
  redis.call(unpack(args))
end
if handed > 0 then
  redis.call('HINCRBY', counts, 'handed_back', handed)
end
local lost = {}
for i = 6, #ARGV do
  if not owned[ARGV[i]] then
    lost[#lost + 1] = ARGV[i]
  end
end
local holder = redis.call('GET', lease) or ''
if ARGV[5] == '1' and holder == me then
  redis.call('PEXPIRE', lease, claim_ms)
end
return {lost, redis.call('HGET', meta, 'reader_done') or '0', redis.call('XLEN', stream), now,
  holder}
"""
)

# KEYS: stream, beats, counts;  ARGV: group, me, claim ms, most entries to take
# -> the entries taken over: {{id, {field, value, ...}}, ...}
CLAIM = """
local stream, beats, counts = KEYS[1], KEYS[2], KEYS[3]
local group, me, claim_ms, most = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idle = redis.call('XPENDING', stream, group, 'IDLE', claim_ms, '-', '+', most * 2 + 10)
local taken = {}
local alive = {}
for _, p in ipairs(idle) do
  if #taken >= most then
    break
  end
  local owner = p[2]
  if owner ~= me then
    if alive[owner] == nil then
      local beat = redis.call('HGET', beats, owner)
      alive[owner] = beat and (now - tonumber(beat) < claim_ms) or false
    end
    if not alive[owner] then
      local got = redis.call('XCLAIM', stream, group, me, claim_ms, p[1])
      for _, e in ipairs(got) do
        if e and e[1] then
          taken[#taken + 1] = e
        end
      end
    end
  end
end
if #taken > 0 then
  redis.call('HINCRBY', counts, 'redeliveries', #taken)
end
return taken
"""

NAMES = ("JOIN", "LEASE", "RELEASE", "PUSH", "SETTLE", "HANDBACK", "BEAT", "CLAIM")
