//! The Lua scripts behind [`RedisStore`](super::RedisStore)'s job queue.
//! Each runs as one atomic step on the server: no other command runs in
//! between, so no crash, timeout or concurrent replica can observe (or
//! leave behind) half of one.
//!
//! Every script:
//!
//! * takes the store's prefix as `ARGV[1]` and builds the queue's key names
//!   from it with the helpers in [`PRELUDE`] (one place for the names; see
//!   the data model in [the queue docs](super::queue));
//! * reads the clock with `redis.call('TIME')`: every lease, due time and
//!   expiry is on the **server's** clock, so replicas whose clocks disagree
//!   still agree on when a lease ran out. Durations arrive in milliseconds,
//!   relative to that clock;
//! * checks the lease token before touching a running job (`renew`,
//!   `finish`): a replica whose lease ran out, and whose job another worker
//!   took since, gets `0` and changes nothing.
//!
//! Times are Lua numbers (doubles): milliseconds since the epoch stay exact
//! (13 digits, well under 2^53), and every duration is capped at
//! [`MAX_MS`] so that sums still print as integers.

use std::sync::LazyLock;

use redis::Script;

/// The queue's namespace under the prefix. `#` never appears in a scheme's
/// name (`a-z`, `0-9`, `-`, `_`), so no idempotency key
/// (`<prefix><scheme>:<id>`) can collide with a queue key.
pub(super) const NAMESPACE: &str = "#q:";

/// Longest duration passed to a script: 100 years, in milliseconds.
pub(super) const MAX_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// How many wake entries the stream keeps (approximately: `XADD MAXLEN ~`).
const WAKE_LENGTH: u32 = 100;

/// How many due entries of one index `take` looks at, at most, past jobs
/// of tenants at their cap.
const TENANT_SCAN: u32 = 1000;

/// How many expired dead letters one write removes from the indexes.
const TRIM_BATCH: u32 = 100;

/// Shared by every script: the clock, the key names, the wake-up and the
/// dead-letter trim.
const PRELUDE: &str = r"
local prefix = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function claim_key(member) return prefix .. member end
local function job_key(member) return prefix .. @NS@ .. 'job:' .. member end
local function pending_key(scheme) return prefix .. @NS@ .. 'pending:' .. scheme end
local function leases_key(scheme) return prefix .. @NS@ .. 'leases:' .. scheme end
local function line_key(scheme, order) return prefix .. @NS@ .. 'line:' .. scheme .. ':' .. order end
local function held_key(scheme) return prefix .. @NS@ .. 'held:' .. scheme end
local dead_key = prefix .. @NS@ .. 'dead'
local dead_until_key = prefix .. @NS@ .. 'dead-until'
local schemes_key = prefix .. @NS@ .. 'schemes'
local function wake(scheme)
  redis.call('XADD', prefix .. @NS@ .. 'wake', 'MAXLEN', '~', @WAKE_LENGTH@, '*', 's', scheme)
end
-- Puts member at the end of its order line: pending due now when the line
-- was empty, else held (in no index) until the jobs before it leave.
local function join_line(scheme, order, member, now)
  if redis.call('RPUSH', line_key(scheme, order), member) == 1 then
    redis.call('ZADD', pending_key(scheme), now, member)
  else
    redis.call('INCR', held_key(scheme))
  end
end
-- Takes member (done or dead) out of its order line; the next one of the
-- line becomes pending, due now.
local function leave_line(scheme, order, member, now)
  local line = line_key(scheme, order)
  redis.call('LREM', line, 1, member)
  local next = redis.call('LINDEX', line, 0)
  if next then
    redis.call('DECR', held_key(scheme))
    redis.call('ZADD', pending_key(scheme), now, next)
    wake(scheme)
  end
end
local function trim_dead(now)
  local gone = redis.call('ZRANGEBYSCORE', dead_until_key, '-inf', now, 'LIMIT', 0, @TRIM_BATCH@)
  if #gone > 0 then
    redis.call('ZREM', dead_until_key, unpack(gone))
    redis.call('ZREM', dead_key, unpack(gone))
  end
end
";

/// Claims the key and records the job, or answers `0`.
///
/// `ARGV`: prefix, member (`<scheme>:<id>`), scheme, event id, head, body,
/// order key (empty: none). A job with an order key joins the end of its
/// key's line, and is pending only when it is the line's first.
/// `SET NX` on the idempotency key is the claim: an inline claim
/// (`p:<token>`), a `done` key, a queued job (`job`) or a dead letter
/// (`dead`) all make it fail, and then nothing is written. A key freed by an
/// expired dead letter may still be listed in the dead-letter indexes: the
/// new job removes it from them.
const ACCEPT: &str = r"
local member, scheme = ARGV[2], ARGV[3]
if not redis.call('SET', claim_key(member), 'job', 'NX') then return 0 end
local now = now_ms()
local job = job_key(member)
redis.call('DEL', job)
redis.call('HSET', job, 'scheme', scheme, 'id', ARGV[4], 'head', ARGV[5], 'body', ARGV[6],
  'attempts', 0, 'accepted', now, 'state', 'pending')
local order = ARGV[7]
if order ~= '' then
  redis.call('HSET', job, 'order', order)
  join_line(scheme, order, member, now)
else
  redis.call('ZADD', pending_key(scheme), now, member)
end
redis.call('SADD', schemes_key, scheme)
redis.call('ZREM', dead_key, member)
redis.call('ZREM', dead_until_key, member)
trim_dead(now)
wake(scheme)
return 1
";

/// Leases up to `max` due jobs of the given schemes.
///
/// `ARGV`: prefix, max, lease ms, token base, cap of running jobs per
/// scheme, cap of running jobs per tenant (each `-1`: none), then the
/// schemes. Due means: pending with due time ≤ now, or running with lease
/// end ≤ now (its worker died or lost Redis). Earliest first. Each taken
/// job gets the token `<base>.<n>`, one more attempt, and a lease end of
/// now + lease. Running jobs are live leases (`ZCOUNT` from now on), every
/// replica's: a scheme at its cap has none taken; with a tenant cap, each
/// tenant's (the member's text between its namespace's `/` and its first
/// `:`) are counted over the leases of every scheme ever accepted, and a
/// due job of a tenant at its cap is passed over (at most
/// [`TENANT_SCAN`] entries of an index are looked at). Held jobs of an
/// order line are in no index, so they are never seen here.
///
/// Answers `{now, next, then per job: member, token, scheme, id, attempts,
/// accepted, head, body, interrupted (1: it was running), order key}`,
/// where `next` is the earliest due time or lease end left in the
/// requested schemes' indexes (`-1`: none), counting for a scheme at its
/// cap only its lease ends and, with a tenant cap, no job passed over for
/// its tenant. A job whose
/// record is missing (only an evicting Redis loses one) is dropped from the
/// index, and its key freed so that the sender's retry is accepted again.
const TAKE: &str = r"
local max, lease, base = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local cap, tenant_cap = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
local function tenant_of(member) return string.match(member, '^[^:/]*/([^:]*):') end
local by_tenant = {}
local function tenant_full(member)
  local tenant = tenant_of(member)
  return tenant ~= nil and (by_tenant[tenant] or 0) >= tenant_cap
end
if tenant_cap >= 0 then
  for _, scheme in ipairs(redis.call('SMEMBERS', schemes_key)) do
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', leases_key(scheme), '(' .. now, '+inf')) do
      local tenant = tenant_of(member)
      if tenant then by_tenant[tenant] = (by_tenant[tenant] or 0) + 1 end
    end
  end
end
local due = {}
local indexes = {}
local later = {}
local left_due = false
-- Adds up to room due entries of index to due; with a tenant cap, pages
-- past the entries of tenants at their cap.
local function gather(index, scheme, room)
  local offset, found_due = 0, 0
  repeat
    local found = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'WITHSCORES', 'LIMIT', offset, room)
    for j = 1, #found, 2 do
      if tenant_cap < 0 or not tenant_full(found[j]) then
        found_due = found_due + 1
        due[#due + 1] = {tonumber(found[j + 1]), found[j], index, scheme}
      end
    end
    offset = offset + #found / 2
  until tenant_cap < 0 or found_due >= room or #found < 2 * room or offset >= @TENANT_SCAN@
  if tenant_cap >= 0 and offset >= @TENANT_SCAN@ then left_due = true end
end
local running = {}
for i = 7, #ARGV do
  local scheme = ARGV[i]
  local room = max
  if cap >= 0 then
    running[scheme] = redis.call('ZCOUNT', leases_key(scheme), '(' .. now, '+inf')
    room = math.min(max, cap - running[scheme])
  end
  for _, index in ipairs({pending_key(scheme), leases_key(scheme)}) do
    if tenant_cap >= 0 then
      if room > 0 or index == leases_key(scheme) then later[#later + 1] = index end
    elseif room > 0 or index == leases_key(scheme) then
      indexes[#indexes + 1] = index
    end
    if room > 0 then gather(index, scheme, room) end
  end
end
table.sort(due, function(a, b)
  if a[1] ~= b[1] then return a[1] < b[1] end
  return a[2] < b[2]
end)
local out = {now, -1}
local taken = 0
for _, d in ipairs(due) do
  local member, index, scheme = d[2], d[3], d[4]
  local capped = (cap >= 0 and running[scheme] >= cap) or (tenant_cap >= 0 and tenant_full(member))
  if taken == max and not capped then
    left_due = true
  elseif not capped then
  redis.call('ZREM', index, member)
  local job = job_key(member)
  local f = redis.call('HMGET', job, 'id', 'accepted', 'head', 'body', 'state', 'order')
  if not f[5] then
    if redis.call('GET', claim_key(member)) == 'job' then redis.call('DEL', claim_key(member)) end
  else
    taken = taken + 1
    local token = base .. '.' .. taken
    local attempts = redis.call('HINCRBY', job, 'attempts', 1)
    redis.call('HSET', job, 'state', 'running', 'token', token)
    redis.call('ZADD', leases_key(scheme), now + lease, member)
    local interrupted = 0
    if f[5] == 'running' then interrupted = 1 end
    if running[scheme] then running[scheme] = running[scheme] + 1 end
    local tenant = tenant_of(member)
    if tenant then by_tenant[tenant] = (by_tenant[tenant] or 0) + 1 end
    for _, v in ipairs({member, token, scheme, f[1], attempts, tonumber(f[2]) or 0, f[3], f[4],
        interrupted, f[6] or ''}) do
      out[#out + 1] = v
    end
  end
  end
end
local function sooner(at)
  if out[2] == -1 or at < out[2] then out[2] = at end
end
for _, index in ipairs(indexes) do
  local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
  if first[2] then sooner(tonumber(first[2])) end
end
for _, index in ipairs(later) do
  local first = redis.call('ZRANGEBYSCORE', index, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if first[2] then sooner(tonumber(first[2])) end
end
if left_due then sooner(now) end
return out
";

/// Reads a running job's scheme if `token` still holds its lease; `nil`
/// otherwise. Used by renew and finish.
const HOLDER: &str = r"
local function held(member, token)
  local f = redis.call('HMGET', job_key(member), 'state', 'token', 'scheme', 'order')
  if f[1] == 'running' and f[2] == token then return f[3], f[4] end
  return nil
end
";

/// Extends a lease. `ARGV`: prefix, member, token, lease ms. `1`, or `0`
/// when the token no longer holds the job.
const RENEW: &str = r"
local member = ARGV[2]
local scheme = held(member, ARGV[3])
if not scheme then return 0 end
redis.call('ZADD', leases_key(scheme), now_ms() + tonumber(ARGV[4]), member)
return 1
";

/// Records how an attempt ended. `ARGV`: prefix, member, token, outcome
/// (`done`, `retry`, `dead`), milliseconds (done TTL, retry delay, dead
/// retention), error text. `1`, or `0` (nothing changed) when the token no
/// longer holds the job.
///
/// * `done`: the job's record is deleted and the key becomes `done` for the
///   TTL.
/// * `retry`: pending again, due at now + delay; a retry due now (a worker
///   shutting down hands its job back) wakes the other replicas.
/// * `dead`: the record stays, with the error and the failure time, and it
///   and the key (`dead`) expire at the same instant, now + retention; both
///   dead-letter indexes list it until then.
///
/// Done or dead, a job with an order key leaves its line, and the next job
/// of the line becomes pending, due now (with a wake entry).
const FINISH: &str = r"
local member, outcome, ms = ARGV[2], ARGV[4], tonumber(ARGV[5])
local scheme, order = held(member, ARGV[3])
if not scheme then return 0 end
local now = now_ms()
local job = job_key(member)
redis.call('ZREM', leases_key(scheme), member)
if outcome == 'done' then
  redis.call('DEL', job)
  redis.call('SET', claim_key(member), 'done', 'PX', ARGV[5])
elseif outcome == 'retry' then
  redis.call('HSET', job, 'state', 'pending', 'error', ARGV[6], 'failed', now)
  redis.call('HDEL', job, 'token')
  redis.call('ZADD', pending_key(scheme), now + ms, member)
  if ms == 0 then wake(scheme) end
else
  local expires = now + ms
  redis.call('HSET', job, 'state', 'dead', 'error', ARGV[6], 'failed', now)
  redis.call('HDEL', job, 'token')
  redis.call('PEXPIREAT', job, expires)
  redis.call('SET', claim_key(member), 'dead')
  redis.call('PEXPIREAT', claim_key(member), expires)
  redis.call('ZADD', dead_key, now, member)
  redis.call('ZADD', dead_until_key, expires, member)
end
if order and outcome ~= 'retry' then leave_line(scheme, order, member, now) end
trim_dead(now)
return 1
";

/// Puts a dead letter back in the queue, due now. `ARGV`: prefix, member.
/// `1`, or `0` when there is no live dead letter under the member. The key
/// and the record lose their expiry: the job is pending like any other. One
/// with an order key joins the end of its line.
const REPLAY: &str = r"
local member = ARGV[2]
local job = job_key(member)
local f = redis.call('HMGET', job, 'state', 'scheme', 'order')
if f[1] ~= 'dead' then return 0 end
local now = now_ms()
redis.call('PERSIST', job)
redis.call('HSET', job, 'state', 'pending')
redis.call('SET', claim_key(member), 'job')
redis.call('ZREM', dead_key, member)
redis.call('ZREM', dead_until_key, member)
if f[3] then
  join_line(f[2], f[3], member, now)
else
  redis.call('ZADD', pending_key(f[2]), now, member)
end
wake(f[2])
return 1
";

/// Counts pending (held ones of an order line included), running and live
/// dead jobs, across every scheme ever accepted under the prefix. `ARGV`:
/// prefix. Answers `{pending, running, dead}`.
const COUNTS: &str = r"
local now = now_ms()
local pending, running = 0, 0
for _, scheme in ipairs(redis.call('SMEMBERS', schemes_key)) do
  pending = pending + redis.call('ZCARD', pending_key(scheme))
    + (tonumber(redis.call('GET', held_key(scheme))) or 0)
  running = running + redis.call('ZCARD', leases_key(scheme))
end
return {pending, running, redis.call('ZCOUNT', dead_until_key, '(' .. now, '+inf')}
";

/// [`COUNTS`] per scheme. `ARGV`: prefix. Answers `{scheme, pending,
/// running, dead}` for every scheme ever accepted under the prefix, in the
/// set's order. A dead letter's scheme is its member's text up to the first
/// `:` (a scheme's name holds none): with one scheme that is a `ZCOUNT`,
/// with several a walk over the live dead letters.
const COUNTS_BY_SCHEME: &str = r"
local now = now_ms()
local schemes = redis.call('SMEMBERS', schemes_key)
local dead = {}
if #schemes == 1 then
  dead[schemes[1]] = redis.call('ZCOUNT', dead_until_key, '(' .. now, '+inf')
elseif #schemes > 1 then
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', dead_until_key, '(' .. now, '+inf')) do
    local scheme = string.match(member, '^([^:]*):')
    if scheme then dead[scheme] = (dead[scheme] or 0) + 1 end
  end
end
local out = {}
for _, scheme in ipairs(schemes) do
  local pending = redis.call('ZCARD', pending_key(scheme))
    + (tonumber(redis.call('GET', held_key(scheme))) or 0)
  for _, v in ipairs({scheme, pending,
      redis.call('ZCARD', leases_key(scheme)), dead[scheme] or 0}) do
    out[#out + 1] = v
  end
end
return out
";

/// Lists up to `limit` live dead letters, oldest failure first (ties by
/// key). `ARGV`: prefix, limit. Answers, per letter: member, scheme, id,
/// attempts, error, accepted, failed.
const DEAD_LETTERS: &str = r"
local limit = tonumber(ARGV[2])
local now = now_ms()
local out = {}
local found, offset = 0, 0
while found < limit do
  local batch = redis.call('ZRANGE', dead_key, offset, offset + limit - 1)
  if #batch == 0 then break end
  offset = offset + #batch
  for _, member in ipairs(batch) do
    local expires = redis.call('ZSCORE', dead_until_key, member)
    if found < limit and expires and tonumber(expires) > now then
      local f = redis.call('HMGET', job_key(member), 'scheme', 'id', 'attempts', 'error',
        'accepted', 'failed', 'state')
      if f[7] == 'dead' then
        found = found + 1
        for _, v in ipairs({member, f[1], f[2], tonumber(f[3]) or 0, f[4] or '',
            tonumber(f[5]) or 0, tonumber(f[6]) or 0}) do
          out[#out + 1] = v
        end
      end
    end
  end
end
return out
";

/// Lists up to `limit` jobs in one state, in the order they leave it
/// (pending by due time, running by lease end, dead by failure time; ties
/// by member). `ARGV`: prefix, state (`pending`, `running`, `dead`),
/// limit. Answers, per job: member, scheme, id, attempts, error, accepted,
/// failed (0: none).
const JOBS: &str = r"
local state, limit = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local found = {}
if state == 'dead' then
  local offset = 0
  while #found < limit do
    local listed = redis.call('ZRANGE', dead_key, offset, offset + limit - 1, 'WITHSCORES')
    if #listed == 0 then break end
    offset = offset + #listed / 2
    for i = 1, #listed, 2 do
      local expires = redis.call('ZSCORE', dead_until_key, listed[i])
      if #found < limit and expires and tonumber(expires) > now then
        found[#found + 1] = {tonumber(listed[i + 1]), listed[i]}
      end
    end
  end
else
  for _, scheme in ipairs(redis.call('SMEMBERS', schemes_key)) do
    local index = state == 'pending' and pending_key(scheme) or leases_key(scheme)
    local listed = redis.call('ZRANGE', index, 0, limit - 1, 'WITHSCORES')
    for i = 1, #listed, 2 do
      found[#found + 1] = {tonumber(listed[i + 1]), listed[i]}
    end
  end
  table.sort(found, function(a, b)
    if a[1] ~= b[1] then return a[1] < b[1] end
    return a[2] < b[2]
  end)
end
local out = {}
for i = 1, math.min(#found, limit) do
  local member = found[i][2]
  local f = redis.call('HMGET', job_key(member), 'scheme', 'id', 'attempts', 'error',
    'accepted', 'failed')
  for _, v in ipairs({member, f[1] or '', f[2] or '', tonumber(f[3]) or 0, f[4] or '',
      tonumber(f[5]) or 0, tonumber(f[6]) or 0}) do
    out[#out + 1] = v
  end
end
return out
";

/// One live dead letter in full. `ARGV`: prefix, member. Answers `{}` when
/// there is none, else member, scheme, id, attempts, error, accepted,
/// failed, head, body.
const DEAD_LETTER: &str = r"
local member = ARGV[2]
local expires = redis.call('ZSCORE', dead_until_key, member)
if not expires or tonumber(expires) <= now_ms() then return {} end
local f = redis.call('HMGET', job_key(member), 'scheme', 'id', 'attempts', 'error', 'accepted',
  'failed', 'head', 'body', 'state')
if f[9] ~= 'dead' then return {} end
return {member, f[1], f[2], tonumber(f[3]) or 0, f[4] or '', tonumber(f[5]) or 0,
  tonumber(f[6]) or 0, f[7] or '', f[8] or ''}
";

/// Removes a live dead letter and frees its key. `ARGV`: prefix, member.
/// `1`, or `0` when there is none.
const DISCARD: &str = r"
local member = ARGV[2]
local job = job_key(member)
if redis.call('HGET', job, 'state') ~= 'dead' then return 0 end
redis.call('DEL', job)
redis.call('DEL', claim_key(member))
redis.call('ZREM', dead_key, member)
redis.call('ZREM', dead_until_key, member)
return 1
";

/// The queue's scripts, loaded once (`EVALSHA`, with `EVAL` and a reload
/// after a Redis restart).
pub(super) struct Scripts {
    pub(super) accept: Script,
    pub(super) take: Script,
    pub(super) renew: Script,
    pub(super) finish: Script,
    pub(super) replay: Script,
    pub(super) counts: Script,
    pub(super) counts_by_scheme: Script,
    pub(super) dead_letters: Script,
    pub(super) jobs: Script,
    pub(super) dead_letter: Script,
    pub(super) discard: Script,
}

/// One script's source: the prelude, its constants filled in, then `parts`.
fn source(parts: &[&str]) -> String {
    format!("{PRELUDE}{}", parts.concat())
        .replace("@NS@", &format!("'{NAMESPACE}'"))
        .replace("@WAKE_LENGTH@", &WAKE_LENGTH.to_string())
        .replace("@TRIM_BATCH@", &TRIM_BATCH.to_string())
        .replace("@TENANT_SCAN@", &TENANT_SCAN.to_string())
}

/// The scripts, built on first use.
pub(super) fn scripts() -> &'static Scripts {
    static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
        let script = |parts: &[&str]| Script::new(&source(parts));
        Scripts {
            accept: script(&[ACCEPT]),
            take: script(&[TAKE]),
            renew: script(&[HOLDER, RENEW]),
            finish: script(&[HOLDER, FINISH]),
            replay: script(&[REPLAY]),
            counts: script(&[COUNTS]),
            counts_by_scheme: script(&[COUNTS_BY_SCHEME]),
            dead_letters: script(&[DEAD_LETTERS]),
            jobs: script(&[JOBS]),
            dead_letter: script(&[DEAD_LETTER]),
            discard: script(&[DISCARD]),
        }
    });
    &SCRIPTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prelude_placeholders_are_all_filled() {
        for body in [
            ACCEPT,
            TAKE,
            HOLDER,
            RENEW,
            FINISH,
            REPLAY,
            COUNTS,
            COUNTS_BY_SCHEME,
            DEAD_LETTERS,
            JOBS,
            DEAD_LETTER,
            DISCARD,
        ] {
            let code = source(&[HOLDER, body]);
            assert!(!code.contains('@'), "{code}");
            assert!(code.contains("prefix .. '#q:' .. 'job:'"));
        }
        assert_eq!(scripts().take.get_hash().len(), 40);
    }

    #[test]
    fn durations_and_times_stay_exact_in_lua() {
        // now (≈ 1.8e12 ms) + the longest duration prints as an integer with
        // Lua's %.14g.
        let later = 1_800_000_000_000u64 + MAX_MS;
        assert!(later < 100_000_000_000_000, "at most 14 digits");
    }
}
