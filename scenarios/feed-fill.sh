#!/usr/bin/env bash
# Fills the feed benchmark's timelines: POSTS posts by each of the seeded users u0 .. u{USERS-1}
# written straight into the feed's posts table (the HTTP path creates posts one at a time, D47:
# 8,000,000 of them would take hours), as already fanned out `push` posts. With the graph of
# scenarios/feed-graph.py (10 followees each), 80 posts per user fill every home timeline to its
# cap of 800 entries when it is rebuilt (the next read of an inactive user, e.g.
# scenarios/feed-activate.toml).
#
#   scenarios/feed-fill.sh sqlite   DATA_DIR/praxis.db      [USERS=100000] [POSTS=80]
#   scenarios/feed-fill.sh postgres postgres://HOST/DBNAME  [USERS=100000] [POSTS=80]
#
# Run it against a server's database after the graph is imported (embedded: with the server
# stopped, as the in-process timelines are lost anyway). Posts are interleaved by author (post
# k of every user, then post k+1), so a home page mixes its followees' posts as a real one does.
# Texts are 40 to 279 characters of English prose cut at a varying place; one post in ten has a
# media reference. Deterministic: two runs write the same posts.
set -euo pipefail

kind="${1:?sqlite or postgres}"
target="${2:?database file or URL}"
users="${3:-100000}"
posts="${4:-80}"
total=$((users * posts))

prose="The morning train was late again, so I read the whole chapter on consistent hashing \
standing between two strangers. Coffee at the corner place is still the best in town, and the \
new barista remembers everyone. Shipped the release tonight after three rounds of review; the \
load test finally held its p99 under fifty milliseconds. Spring is here: the park is full of \
dogs, kids on bikes and people pretending to jog. Reminder that backups you never restored are \
only hopes. Our team retro turned into a long talk about queues, retries and idempotency keys, \
which is exactly the kind of meeting I like. Anyone have a good recipe for lentil soup that \
does not take all afternoon? Watching the rain from the office window and thinking about cache \
invalidation, naming things and off-by-one errors."

# The insert, the same in both dialects; $1 is the source of the row numbers n and of t0.
sql_body() {
    cat <<SQL
INSERT INTO feed_posts (author, text, media, fanout, created_at, fanned_out_at)
SELECT 'u' || (n % $users),
       substr('$prose', CAST(1 + (n * 7919) % 360 AS INTEGER), CAST(40 + (n * 104729) % 240 AS INTEGER)),
       CASE WHEN n % 10 = 3 THEN '["https://media.example/' || n || '.jpg"]' END,
       'push', t0 - ($total - n) * 1000, t0 - ($total - n) * 1000
FROM $1
SQL
}

case "$kind" in
sqlite)
    sqlite3 "$target" <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < $total - 1),
     clock(t0) AS (SELECT CAST(strftime('%s', 'now') AS INTEGER) * 1000)
$(sql_body "s, clock");
COMMIT;
ANALYZE;
SELECT count(*) || ' posts' FROM feed_posts;
SQL
    ;;
postgres)
    psql -q -v ON_ERROR_STOP=1 "$target" <<SQL
$(sql_body "generate_series(0::bigint, $total - 1) AS s(n), (SELECT (extract(epoch FROM now()) * 1000)::bigint AS t0) AS clock");
ANALYZE;
SELECT count(*) || ' posts' FROM feed_posts;
SQL
    ;;
*)
    echo "usage: $0 sqlite|postgres TARGET [USERS] [POSTS]" >&2
    exit 2
    ;;
esac
