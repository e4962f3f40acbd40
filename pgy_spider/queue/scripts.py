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
- :data:`DROP_REJECTS`: the rejected seeds' records the reader has written to its failed
  file leave the run's list, once (records are unique: they carry their sequence number).
- :data:`CLAIM`: entries of a worker that has shown no sign of life (neither heartbeat nor
  re-claim) for the claim time, taken over, with the budget units it held (counted as spent:
  its calls in flight may have been billed).

The controls every process of a run shares (:mod:`.pause`, :mod:`.tokens`, :mod:`.budget`):

- :data:`PAUSE`: a 302 answered: a new pause of the run, its length doubled from the last,
  timed by Redis's clock; or nothing, when it falls inside the current one.
- :data:`LOOK`: what a process polls a few times a second: the pause left, the retired
  fingerprints, the budget spent, a stop of the whole run.
- :data:`TOKENS`: a token retired (by fingerprint) and this worker's usable tokens; when it
  has none left and no live worker has one either, the whole run stops.
- :data:`RESERVE`, :data:`SPEND`, :data:`DROP_HELD`: the run's budget: one unit reserved
  atomically against ``spent + held``; settles applied once each (a batch number per worker);
  what a worker still holds when it ends counted as spent.
- :data:`FINISH`: a finished run's keys given their lifetime (``PGY_RUN_TTL_HOURS``);
  :data:`KEEP_LIFETIME`: and those written again after that (which came back without one);
  the scripts a worker joining a finished run still runs (BEAT, LOOK, TOKENS) give a key they
  created again the run's lifetime themselves, so a kill in between leaves none behind.

Entries are removed with ``XDEL`` once settled and the stream is never trimmed: Redis 7.0
drops pending entries that ``MAXLEN``/``MINID`` trims away, a silent seed loss.
"""

from __future__ import annotations

# KEYS: meta, then every other key a new run starts without (RunKeys.join_keys)
# ARGV: sources ("" for a worker without seeds), created (ISO time), group
# -> {"exists", sources} | {"missing", ""} | {"created", sources}
# A process joining a run that was stopped for the whole run (no token left, the budget
# spent) resumes it: the stop is lifted, and comes back if the cause is still there.
JOIN = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HDEL', KEYS[1], 'stopped')
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

# A key of a finished run that this script created again (a worker joined the finished run:
# its heartbeat, its info, its tokens) gets the run's remaining lifetime at once. KEEP_LIFETIME
# does it too, but only later: a worker killed in between would leave the key for good.
_KEEP_LIFE = """
local function keep_life(meta, key)
  if redis.call('PTTL', key) == -1 and redis.call('HEXISTS', meta, 'finished') == 1 then
    local ttl = redis.call('PTTL', meta)
    if ttl > 0 then
      redis.call('PEXPIRE', key, ttl)
    end
  end
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
    + _KEEP_LIFE
    + """
local beats, info, stream, lease, meta, counts = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
  KEYS[6]
local group, me, claim_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', beats, me, now)
redis.call('HSET', info, me, ARGV[4])
keep_life(meta, beats)
keep_life(meta, info)
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
  keep_life(meta, counts)
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

# Redis's clock in ms, and the budget units a worker held moved to spent (its calls may
# have been billed; a held unit is never lost and never counted twice).
_NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
_SWEEP = """
local function sweep_held(budget, owner)
  local h = tonumber(redis.call('HGET', budget, 'held:' .. owner) or '0')
  if h > 0 then
    redis.call('HINCRBY', budget, 'spent', h)
    redis.call('HINCRBY', budget, 'held', -h)
    redis.call('HINCRBY', budget, 'swept', h)
  end
  redis.call('HDEL', budget, 'held:' .. owner)
end
"""

# KEYS: stream, beats, counts, budget;  ARGV: group, me, claim ms, most entries to take
# -> the entries taken over: {{id, {field, value, ...}}, ...}
CLAIM = (
    _SWEEP
    + """
local stream, beats, counts, budget = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
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
      sweep_held(budget, owner)
    end
  end
end
if #taken > 0 then
  redis.call('HINCRBY', counts, 'redeliveries', #taken)
end
return taken
"""
)

# KEYS: pause;  ARGV: first delay ms, longest delay ms
# -> {started (0/1), this pause's ms, ms left of the run's pause}
PAUSE = (
    _NOW
    + """
local now = now_ms()
local until_ = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if now < until_ then
  return {0, 0, until_ - now}
end
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or '0') + 1
local pause = math.floor(math.min(tonumber(ARGV[1]) * 2 ^ (level - 1), tonumber(ARGV[2])))
redis.call('HSET', KEYS[1], 'until', now + pause, 'level', level)
return {1, pause, pause}
"""
)

# KEYS: pause, retired, meta, tokens, budget
# ARGV: me, reset the doubling (0/1), set my usable fingerprints (0/1), those fingerprints
# -> {ms left of the pause, its level, the run's stop ("" none), {fp, reason, ...}, spent}
LOOK = (
    _NOW
    + _KEEP_LIFE
    + """
local now = now_ms()
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 'level', 0)
  keep_life(KEYS[3], KEYS[1])
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
  keep_life(KEYS[3], KEYS[4])
end
local until_ = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local left = until_ - now
if left < 0 then
  left = 0
end
return {left, tonumber(redis.call('HGET', KEYS[1], 'level') or '0'),
  redis.call('HGET', KEYS[3], 'stopped') or '', redis.call('HGETALL', KEYS[2]),
  tonumber(redis.call('HGET', KEYS[5], 'spent') or '0')}
"""
)

# KEYS: retired, tokens, beats, meta
# ARGV: me, fingerprint retired ("" none), its reason, claim ms, stop reason,
#       then the fingerprints of my tokens not retired
# -> "ok" (I have a token) | "others" (a live worker still has one) | "run" (none has: the
#    whole run is stopped)
TOKENS = (
    _NOW
    + _KEEP_LIFE
    + """
local retired, tokens, beats, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local me = ARGV[1]
if ARGV[2] ~= '' then
  redis.call('HSETNX', retired, ARGV[2], ARGV[3])
  keep_life(meta, retired)
end
local mine = {}
for i = 6, #ARGV do
  if redis.call('HEXISTS', retired, ARGV[i]) == 0 then
    mine[#mine + 1] = ARGV[i]
  end
end
redis.call('HSET', tokens, me, table.concat(mine, ' '))
keep_life(meta, tokens)
if #mine > 0 then
  return 'ok'
end
local now, claim_ms = now_ms(), tonumber(ARGV[4])
local all = redis.call('HGETALL', tokens)
for i = 1, #all, 2 do
  local worker = all[i]
  local beat = redis.call('HGET', beats, worker)
  if worker ~= me and beat and now - tonumber(beat) < claim_ms then
    for fp in string.gmatch(all[i + 1], '%S+') do
      if redis.call('HEXISTS', retired, fp) == 0 then
        return 'others'
      end
    end
  end
end
redis.call('HSET', meta, 'stopped', ARGV[5])
return 'run'
"""
)

# KEYS: budget, beats, meta;  ARGV: me, limit, claim ms, sweep allowed (0/1), stop reason
# -> {1 reserved | 0 every unit left is held by a call in flight (wait) | -1 spent, spent}
# Units held by a worker with no sign of life are counted as spent when the others would
# otherwise wait for them (its calls in flight may have been billed).
RESERVE = (
    _NOW
    + _SWEEP
    + """
local budget, beats, meta = KEYS[1], KEYS[2], KEYS[3]
local me, limit = ARGV[1], tonumber(ARGV[2])
local spent = tonumber(redis.call('HGET', budget, 'spent') or '0')
local held = tonumber(redis.call('HGET', budget, 'held') or '0')
if spent < limit and spent + held >= limit and ARGV[4] == '1' then
  local now, claim_ms = now_ms(), tonumber(ARGV[3])
  local fields = redis.call('HKEYS', budget)
  for _, field in ipairs(fields) do
    if string.sub(field, 1, 5) == 'held:' then
      local owner = string.sub(field, 6)
      local beat = redis.call('HGET', beats, owner)
      if owner ~= me and not (beat and now - tonumber(beat) < claim_ms) then
        sweep_held(budget, owner)
      end
    end
  end
  spent = tonumber(redis.call('HGET', budget, 'spent') or '0')
  held = tonumber(redis.call('HGET', budget, 'held') or '0')
end
if spent >= limit then
  redis.call('HSET', meta, 'stopped', ARGV[5])
  return {-1, spent}
end
if spent + held >= limit then
  return {0, spent}
end
redis.call('HINCRBY', budget, 'held', 1)
redis.call('HINCRBY', budget, 'held:' .. me, 1)
return {1, spent}
"""
)

# KEYS: budget;  ARGV: me, batch number, units given back, of them billable -> spent
# Units of mine already counted as spent (taken as a dead worker's) are not spent again.
SPEND = """
local budget, me = KEYS[1], ARGV[1]
local seen = tonumber(redis.call('HGET', budget, 'batch:' .. me) or '-1')
if tonumber(ARGV[2]) > seen then
  redis.call('HSET', budget, 'batch:' .. me, ARGV[2])
  local n, billable = tonumber(ARGV[3]), tonumber(ARGV[4])
  local h = tonumber(redis.call('HGET', budget, 'held:' .. me) or '0')
  local r = math.min(n, h)
  if r > 0 then
    redis.call('HINCRBY', budget, 'held', -r)
    redis.call('HINCRBY', budget, 'held:' .. me, -r)
  end
  local add = billable - (n - r)
  if add > 0 then
    redis.call('HINCRBY', budget, 'spent', add)
  end
end
return tonumber(redis.call('HGET', budget, 'spent') or '0')
"""

# KEYS: budget, tokens;  ARGV: me -> spent. A worker that ends: what it still holds is
# spent, and it holds no token for the run any more.
DROP_HELD = (
    _SWEEP
    + """
sweep_held(KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[1], 'batch:' .. ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
"""
)

# KEYS: meta, stream, then every other fixed key of the run;  ARGV: lifetime ms
# -> {1 if this call finished the run (0: not finished, or by another already), buckets}
# The meta hash is given its lifetime last, by the caller, and a minute longer: while it
# exists the run is known as finished, never started again over the rest of its keys.
FINISH = (
    _NOW
    + """
if redis.call('HGET', KEYS[1], 'reader_done') ~= '1' or redis.call('XLEN', KEYS[2]) ~= 0 then
  return {0, 0}
end
if redis.call('HSETNX', KEYS[1], 'finished', now_ms()) == 0 then
  return {0, 0}
end
if tonumber(ARGV[1]) > 0 then
  for i = 2, #KEYS do
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
return {1, tonumber(redis.call('HGET', KEYS[1], 'buckets') or '0')}
"""
)

# KEYS: meta, then every other fixed key of the run;  ARGV: lifetime ms, meta's (longer)
# -> {1 when meta had no lifetime yet (the worker that finished the run stopped before it gave
#    one: the dedup buckets may have none either), buckets} | {0, 0}
# A key of a finished run written again after FINISH (by a worker that joined the finished
# run: its heartbeat, its tokens, its counts; or once every other worker's tokens were gone)
# is a new key without a lifetime: it would outlive the run in Redis for good.
KEEP_LIFETIME = """
if redis.call('HEXISTS', KEYS[1], 'finished') == 0 then
  return {0, 0}
end
for i = 2, #KEYS do
  if redis.call('PTTL', KEYS[i]) == -1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  end
end
if redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('HGET', KEYS[1], 'buckets') or '0')}
end
return {0, 0}
"""

# KEYS: rejects; ARGV: how many records the reader wrote to its failed file, the last of them
# -> 1 when they were dropped, 0 when the list no longer starts with them (dropped already:
# a retry after a lost reply must not drop the next records, which nobody has written yet)
DROP_REJECTS = """
if redis.call('LINDEX', KEYS[1], tonumber(ARGV[1]) - 1) == ARGV[2] then
  redis.call('LTRIM', KEYS[1], tonumber(ARGV[1]), -1)
  return 1
end
return 0
"""

NAMES = (
    "JOIN",
    "LEASE",
    "RELEASE",
    "PUSH",
    "SETTLE",
    "HANDBACK",
    "BEAT",
    "CLAIM",
    "PAUSE",
    "LOOK",
    "TOKENS",
    "RESERVE",
    "SPEND",
    "DROP_HELD",
    "FINISH",
    "KEEP_LIFETIME",
    "DROP_REJECTS",
)
