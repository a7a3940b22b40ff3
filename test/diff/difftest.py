#!/usr/bin/env python3
"""test/diff/difftest.py - differential test of cached_query_json against the direct statement.

Replays corpus files (see corpus.py) in order against a fresh database
"regression" of a running server with cache_ext preloaded: setup statements
run once; at every read statement Q it runs

  direct:   SELECT row_to_json(t)::jsonb::text FROM (Q) t
  cached:   SELECT cached_query_json(Q)::text, cache_status()     (twice)

and compares the rows (as a sequence when Q has a top-level ORDER BY, as a
multiset otherwise).  cached_query_json builds its array with row_to_json of
each row and jsonb_in, so both sides agree on duplicate and ?column? names.

Every statement is classified:
  match              same rows (any cache status)
  MISMATCH           different rows                              (fails)
  CRASH              the server died during the call              (fails)
  ERROR-ONLY-CACHED  the cached call errors, the direct one not   (fails)
  TIMEOUT            a cached call hit statement_timeout, the direct one not
  error-only-direct  the direct statement errors, the cached one not
  both-error         both error (fine), also when the cached call errors and
                     the direct statement, repeated, errors the same way
                     (a statement with side effects, e.g. one creating a table)
  refused-locking    FOR UPDATE/SHARE refused with 0A000, by design
  nondeterministic   rows differ (or one cached call errors), nothing was served
                     from the cache, and the direct statement differs from itself
                     or the call bypassed as volatile/TABLESAMPLE/statistics/... (fine)
  stale-ttl-only     rows differ, served by a HIT that cache_status() reports
                     as ttl-only (an untracked table changed within the TTL:
                     allowed by the contract; --track-all tracks every table)
  skipped            not checked (reason counted)

Connection: libpq environment (PGHOST, PGPORT, PGUSER).  Prints a summary with
the counts per class and per cache status / bypass reason, writes the failures
(and, for review, the error-only-direct and nondeterministic statements) to --failures as JSON lines,
exits 1 on any MISMATCH, CRASH or ERROR-ONLY-CACHED.
"""

import argparse
import concurrent.futures
import gzip
import json
import os
import re
import sys
import threading
import time
import zlib

import psycopg2
import psycopg2.extensions as ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402

FAILING = ("MISMATCH", "CRASH", "ERROR-ONLY-CACHED")
DB = "regression"


def top_level_order_by(q):
    toks = list(corpus.tokens(q))
    for k in range(len(toks) - 1):
        if toks[k] == ("ORDER", 0) and toks[k + 1][0] == "BY":
            return True
    return False


def short(s, n=400):
    s = str(s)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


# --track-all: every table, materialized view and partitioned table created
# from now on is tracked (errors are ignored so that the user's DDL never
# fails because of the test harness).
TRACK_ALL = """
CREATE SCHEMA difftest;
CREATE FUNCTION difftest.track_new() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT objid FROM pg_event_trigger_ddl_commands()
           WHERE object_type IN ('table', 'materialized view') LOOP
    BEGIN
      PERFORM public.cache_track(r.objid::regclass);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
  END LOOP;
END $$;
CREATE EVENT TRIGGER difftest_track_new ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'CREATE MATERIALIZED VIEW')
  EXECUTE FUNCTION difftest.track_new();
"""


# Bypass reasons that say the statement's result may differ from run to run:
# a difference (or an error) in a call that bypassed for one of them is not
# the cache's doing.
NONDET = re.compile(r"^BYPASS.*(volatile|TABLESAMPLE|statistic|session|time|random|transaction)", re.I)


class ServerGone(Exception):
    pass


class Runner:
    def __init__(self, args):
        self.args = args
        self.counts = {}
        self.status_counts = {}
        self.skips = {}
        self.failures = []
        self.local = threading.local()
        self.lock = threading.RLock()
        self.crashes = 0
        self.last_progress = time.time()
        self.failure_file = open(args.failures, "w") if args.failures else None
        self.options = "-c statement_timeout=%d" % args.timeout
        for s in args.set or []:
            self.options += " -c " + s.replace(" ", "\\ ")

    # ---- connections ------------------------------------------------------
    def connect(self, user, dbname=DB):
        c = psycopg2.connect(dbname=dbname, user=user, options=self.options,
                             application_name="difftest")
        c.autocommit = True
        return c

    @property
    def conns(self):
        if not hasattr(self.local, "conns"):
            self.local.conns = {}
        return self.local.conns

    def session(self, key, user):
        c = self.conns.get(key)
        if c is not None and c.closed == 0:
            return c
        c = self.connect(user)
        self.conns[key] = c
        return c

    def drop_sessions(self):
        for c in self.conns.values():
            try:
                c.close()
            except Exception:
                pass
        self.local.conns = {}

    def wait_for_server(self):
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                c = self.connect(self.args.superuser)
                c.close()
                return
            except psycopg2.OperationalError:
                time.sleep(0.5)
        sys.exit("difftest: the server did not come back after a crash")

    # ---- setup ------------------------------------------------------------
    def create_database(self):
        c = self.connect(self.args.superuser, "postgres")
        cur = c.cursor()
        cur.execute('DROP DATABASE IF EXISTS "%s"' % DB)
        cur.execute('CREATE DATABASE "%s" TEMPLATE=template0' % DB)
        for s in ("lc_messages TO 'C'", "lc_monetary TO 'C'", "lc_numeric TO 'C'",
                  "lc_time TO 'C'", "bytea_output TO 'hex'",
                  "timezone_abbreviations TO 'Default'"):
            cur.execute('ALTER DATABASE "%s" SET %s' % (DB, s))
        if self.args.as_role:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.args.as_role,))
            if not cur.fetchall():
                cur.execute('CREATE ROLE "%s" LOGIN IN ROLE pg_read_all_data' % self.args.as_role)
        c.close()
        if not self.args.direct_only:
            c = self.connect(self.args.superuser)
            c.cursor().execute("CREATE EXTENSION cache_ext")
            if self.args.track_all:
                c.cursor().execute(TRACK_ALL)
            c.close()

    # ---- one statement ----------------------------------------------------
    def run(self, cur, sql, params=None, fetch=True):
        """(rows, None) or (None, (sqlstate, message)); raises ServerGone."""
        conn = cur.connection
        sp = conn.info.transaction_status == ext.TRANSACTION_STATUS_INTRANS
        try:
            if sp:
                cur.execute("SAVEPOINT difftest_sp")
            cur.execute(sql, params)
            rows = cur.fetchall() if fetch and cur.description is not None else None
            if sp:
                cur.execute("RELEASE SAVEPOINT difftest_sp")
            return rows, None
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
            if conn.closed:
                raise ServerGone(str(e))
            err = (getattr(e, "pgcode", None), str(e).strip())
        except psycopg2.Error as e:
            err = (e.pgcode, str(e).strip())
        if conn.closed:
            raise ServerGone(err[1])
        if sp:
            try:
                cur.execute("ROLLBACK TO SAVEPOINT difftest_sp")
                cur.execute("RELEASE SAVEPOINT difftest_sp")
            except psycopg2.Error:
                if conn.closed:
                    raise ServerGone(err[1])
        return None, err

    def count(self, cls):
        with self.lock:
            self.counts[cls] = self.counts.get(cls, 0) + 1

    def skip(self, why):
        with self.lock:
            self.count("skipped")
            self.skips[why] = self.skips.get(why, 0) + 1

    def fail(self, cls, st, **detail):
        with self.lock:
            self._fail(cls, st, **detail)

    def _fail(self, cls, st, **detail):
        self.count(cls)
        rec = {"class": cls, "test": st.get("t"), "query": st["q"]}
        rec.update(detail)
        self.failures.append(rec)
        if self.failure_file:
            self.failure_file.write(json.dumps(rec, ensure_ascii=False) + "\n")
            self.failure_file.flush()
        if self.args.verbose and cls in FAILING:
            print("%s [%s] %s" % (cls, st.get("t"), short(st["q"], 200)), flush=True)

    def other(self, cur, st):
        if "copy" in st:
            path = os.path.join(self.args.datadir, st["copy"] + ".gz")
            conn = cur.connection
            try:
                with gzip.open(path, "rb") as f:
                    cur.copy_expert(st["q"], f)
            except psycopg2.Error:
                if conn.closed:
                    raise ServerGone("copy")
            return
        self.run(cur, st["q"], fetch=False)

    def check(self, cur, st, order_key):
        q = st["q"].rstrip().rstrip(";")
        conn = cur.connection
        if conn.info.transaction_status == ext.TRANSACTION_STATUS_INERROR:
            self.run(cur, q, fetch=False)
            self.skip("inside an aborted transaction")
            return
        if self.args.direct_only:
            self.run(cur, q, fetch=False)
            self.skip("--direct-only")
            return
        if self.args.sample < 1 and st.get("t", "").split("/")[0] != "sqlsmith" and \
                zlib.crc32(q.encode("utf-8", "surrogateescape")) / 2**32 >= self.args.sample:
            self.run(cur, q, fetch=False)
            self.skip("not in --sample")
            return
        if self.args.max_ms and st.get("ms", 0) > self.args.max_ms:
            self.run(cur, q, fetch=False)
            self.skip("slower than --max-ms when generated")
            return
        # The alias must not be a column name of Q: row_to_json(t) would
        # take that column instead of the row.
        wrapped = "SELECT row_to_json(difftest_row_)::jsonb::text FROM (\n%s\n) difftest_row_" % q
        step = "direct"
        try:
            d_rows, d_err = self.run(cur, wrapped)
            res = []
            for step in ("cached-1", "cached-2"):
                rows, err = self.run(cur, "SELECT public.cached_query_json(%s)::text, public.cache_status()", (q,))
                if err:
                    res.append((None, None, err))
                else:
                    res.append((rows[0][0], rows[0][1], None))
        except ServerGone as e:
            self.crashes += 1
            self.fail("CRASH", st, step=step, error=short(e))
            self.drop_sessions()
            self.wait_for_server()
            return
        for _, status, _ in res:
            if status:
                key = status.split(":")[0].split("(")[0].strip()
                if key.startswith("BYPASS"):
                    key = status
                key = re.sub(r"\d+", "N", key)[:120]
                with self.lock:
                    self.status_counts[key] = self.status_counts.get(key, 0) + 1
        c_errs = [r[2] for r in res if r[2]]
        if d_err:
            if d_err[0] == "57014":
                self.skip("direct statement timed out")
            elif c_errs:
                self.count("both-error")
            else:
                self.fail("error-only-direct", st, sqlstate=d_err[0], error=short(d_err[1], 600),
                          statuses=[r[1] for r in res])
            return
        if c_errs:
            e = c_errs[0]
            if st["k"] == "lock" and e[0] == "0A000":
                # FOR UPDATE/SHARE is refused with a reason, by design (docs/architecture.md §2 C1).
                self.count("refused-locking")
                return
            # A statement with side effects (creates a table, declares a
            # cursor) may fail when repeated: then the direct one fails too.
            d3, err3 = self.run(cur, wrapped)
            if err3 and err3[0] == e[0]:
                self.count("both-error")
                return
            # The wrapped form can succeed where Q itself fails: the planner
            # may drop a column of Q that the outer query does not need in
            # the form it was written (e.g. under a constant-false WHERE), and
            # with it a function call the role may not EXECUTE.
            _, err4 = self.run(cur, q, fetch=False)
            if err4 and err4[0] == e[0]:
                self.count("both-error")
                return
            if any(NONDET.search(r[1] or "") for r in res):
                # The other cached call bypassed as nondeterministic: the
                # rows it computed (and so the errors) may differ per run.
                self.count("nondeterministic")
                return
            if e[0] == "57014":
                self.fail("TIMEOUT", st, error=short(e[1]))
            else:
                self.fail("ERROR-ONLY-CACHED", st, sqlstate=e[0], error=short(e[1], 600),
                          statuses=[r[1] for r in res])
            return
        direct = [r[0] for r in d_rows]
        ordered = top_level_order_by(q)
        bad = []
        for i, (text, status, _) in enumerate(res):
            if text == "[" + ", ".join(direct) + "]":
                continue
            rows, err = self.run(cur, "SELECT e::text FROM jsonb_array_elements(%s::jsonb) e", (text,))
            elems = [r[0] for r in rows] if rows is not None else None
            if elems is not None and (elems == direct or (not ordered and sorted(elems) == sorted(direct))):
                continue
            bad.append((i, status, elems if elems is not None else text))
        if not bad:
            self.count("match")
            return
        # Is the statement itself nondeterministic?  Then a difference is fine
        # as long as nothing came from the cache.
        d2, err2 = self.run(cur, wrapped)
        d2 = [r[0] for r in d2] if d2 is not None else None
        same = d2 is not None and (d2 == direct or (not ordered and sorted(d2) == sorted(direct)))
        fresh = not any(s and s.startswith("HIT") for _, s, _ in bad)
        if fresh and (not same or any(NONDET.search(s or "") for _, s, _ in bad)):
            self.fail("nondeterministic", st, statuses=[r[1] for r in res],
                      direct_is_deterministic=same)
            return
        if all(s and s.startswith("HIT") and "ttl-only" in s for _, s, _ in bad):
            # Stale within the TTL on an untracked table: what the contract
            # allows (C1); reported, not a failure.  --track-all avoids it.
            self.count("stale-ttl-only")
            return
        self.fail("MISMATCH", st, ordered=ordered, statuses=[r[1] for r in res],
                  direct=short(direct, 1500),
                  cached=[{"call": i + 1, "status": s, "rows": short(r, 1500)} for i, s, r in bad],
                  direct_is_deterministic=same)

    # ---- corpus -----------------------------------------------------------
    def replay(self, path):
        """Replay one corpus file: the schedule's groups in order, the tests
        of a group concurrently (--jobs), each test's statements in order."""
        groups = []          # [(group, {test: [statements]})] in file order
        n = 0
        for i, st in enumerate(corpus.load(path)):
            if self.args.only_test and st.get("t") not in self.args.only_test:
                continue
            if st["k"] in ("read", "lock"):
                n += 1
                if self.args.limit and n > self.args.limit:
                    break
            t = st.get("t", "")
            if t == "sqlsmith":
                t = st["t"] = "sqlsmith/%d" % (n // 250)
            if not groups or groups[-1][0] != st.get("g"):
                groups.append((st.get("g"), {}))
            groups[-1][1].setdefault(t, []).append(st)
        for g, tests in groups:
            if self.args.jobs > 1 and len(tests) > 1:
                with concurrent.futures.ThreadPoolExecutor(self.args.jobs) as pool:
                    for f in [pool.submit(self.replay_test, t, sts) for t, sts in tests.items()]:
                        f.result()
            else:
                for t, sts in tests.items():
                    self.replay_test(t, sts)
            if time.time() - self.last_progress > 30:
                self.last_progress = time.time()
                print("difftest: after %s, %s" % (", ".join(list(tests)[:3]), ", ".join(
                    "%s %d" % kv for kv in sorted(self.counts.items()))), flush=True)

    def replay_test(self, test, stmts):
        if self.args.verbose:
            print("-- %s" % test, flush=True)
        try:
            for st in stmts:
                self.replay_one(st)
        finally:
            self.drop_sessions()

    def replay_one(self, st):
        k = st["k"]
        if k.startswith("skip:"):
            self.skip(k[5:])
            return
        user = st.get("u") or self.args.superuser
        if self.args.as_role and user == self.args.superuser and k in ("read", "lock"):
            user = self.args.as_role
        try:
            cur = self.session((st.get("t"), st.get("s", 0), user), user).cursor()
        except psycopg2.OperationalError:
            self.skip("cannot connect as the statement's role")
            return
        try:
            if k in ("read", "lock"):
                self.check(cur, st, None)
            else:
                self.other(cur, st)
        except ServerGone as e:
            self.crashes += 1
            self.fail("CRASH", st, step="setup statement", error=short(e))
            self.drop_sessions()
            self.wait_for_server()

    def verify_counters(self):
        """With cache_ext.verify_rate set, a hit that differs from the direct
        rows is counted in cache_stats and answered with the direct rows (so
        the comparison above cannot see it): count those as mismatches."""
        if self.args.direct_only:
            return
        try:
            c = self.connect(self.args.superuser)
            cur = c.cursor()
            cur.execute("SELECT verified, verify_mismatches FROM public.cache_stats")
            verified, mism = cur.fetchone()
            c.close()
        except psycopg2.Error as e:
            print("difftest: cannot read the verification counters: %s" % str(e).strip())
            return
        print("difftest: cache_stats: %s hits verified, %s verify mismatches" % (verified, mism))
        if mism:
            self.fail("MISMATCH", {"t": "(verify_rate)", "q": "(see the server log)"},
                      error="cache_stats.verify_mismatches = %d" % mism)

    def summary(self, secs):
        total = sum(v for k, v in self.counts.items() if k != "skipped")
        print("\ndifftest: %d statements checked in %.0fs" % (total, secs))
        for cls in ("match", "MISMATCH", "CRASH", "ERROR-ONLY-CACHED", "TIMEOUT",
                    "error-only-direct", "both-error", "nondeterministic", "stale-ttl-only",
                    "refused-locking",
                    "skipped"):
            print("  %-20s %7d" % (cls, self.counts.get(cls, 0)))
        print("skipped, by reason:")
        for k, v in sorted(self.skips.items(), key=lambda x: -x[1]):
            print("  %7d  %s" % (v, k))
        if any(r["class"] in FAILING for r in self.failures):
            print("first failures (all in the failures file):")
            for rec in [r for r in self.failures if r["class"] in FAILING][:self.args.show]:
                extra = rec.get("error") or ("direct %s / cached %s" % (
                    short(rec.get("direct"), 150), short(rec.get("cached"), 300)))
                print("  %s [%s] %s\n      -> %s" % (rec["class"], rec["test"],
                      short(" ".join(rec["query"].split()), 300), short(extra, 400)))
        print("cache status of the cached calls:")
        for k, v in sorted(self.status_counts.items(), key=lambda x: -x[1]):
            print("  %7d  %s" % (v, k))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", nargs="+", help="corpus files, replayed in order")
    ap.add_argument("--datadir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "data"))
    ap.add_argument("--timeout", type=int, default=10000, help="statement_timeout in ms")
    ap.add_argument("--max-ms", type=float, default=0,
                    help="do not check reads that took longer than this when generated")
    ap.add_argument("--sample", type=float, default=1.0,
                    help="check this fraction of the regression corpus's reads (chosen by a hash "
                    "of the statement text; the others run directly only); sqlsmith's are all checked")
    ap.add_argument("--set", action="append", metavar="GUC=VALUE",
                    help="a setting for every session, e.g. cache_ext.verify_rate=1")
    ap.add_argument("--track-all", action="store_true",
                    help="track (cache_track) every table the corpus creates, by an event trigger")
    ap.add_argument("--as-role", help="run the read statements the superuser ran as this role")
    ap.add_argument("--superuser", default=os.environ.get("PGUSER", "postgres"))
    ap.add_argument("--show", type=int, default=25, help="failures printed in the summary")
    ap.add_argument("--failures", default="difftest-failures.jsonl")
    ap.add_argument("--only-test", action="append", help="replay only this test (repeatable)")
    ap.add_argument("--limit", type=int, default=0, help="stop after this many reads per corpus")
    ap.add_argument("--jobs", type=int, default=1,
                    help="tests of one schedule group replayed concurrently (a crash then also "
                    "counts the statements of the other sessions it killed)")
    ap.add_argument("--direct-only", action="store_true",
                    help="only replay (no extension, no cached calls): builds the database sqlsmith generates against")
    ap.add_argument("--no-create", action="store_true", help="use the existing database")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args()

    # What pg_regress gives its sessions.
    os.environ["PGTZ"] = "America/Los_Angeles"
    os.environ["PGDATESTYLE"] = "Postgres, MDY"
    r = Runner(args)
    start = time.time()
    if not args.no_create:
        r.create_database()
    for path in args.corpus:
        r.replay(path)
    r.drop_sessions()
    r.verify_counters()
    r.summary(time.time() - start)
    if r.failure_file:
        r.failure_file.close()
    nfail = sum(r.counts.get(c, 0) for c in FAILING)
    print("difftest: %d failing (%s); details in %s" % (nfail, ", ".join(
        "%s %d" % (c, r.counts.get(c, 0)) for c in FAILING), args.failures))
    sys.exit(1 if nfail else 0)


if __name__ == "__main__":
    main()
