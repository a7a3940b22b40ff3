#!/usr/bin/env python3
"""test/diff/corpus.py - build and read the differential test's corpus files.

A corpus file is gzipped JSON lines, one statement per line:
  {"t": test, "g": group, "s": session, "u": user, "q": sql,
   "k": kind, "ms": direct duration when generated, "e": error when generated,
   "copy": data file (for COPY ... FROM STDIN rewritten from a server file)}
kind is "read" (checked differentially), "lock" (a read with FOR UPDATE/SHARE,
also checked), "other" (run once, as setup) or "skip:<reason>" (not run).

Subcommands:
  from-log    turn the statement log of a pg_regress run into a corpus
  filter-sqlsmith  keep the sqlsmith queries that run directly, fast, without error
  stats       print the counts per test / kind of a corpus file
"""

import argparse
import gzip
import json
import os
import re
import shutil
import sys
import time

READ_START = {"SELECT", "VALUES", "TABLE", "WITH"}


def tokens(sql):
    """Yield the words (upper-cased) and punctuation of sql outside string
    literals, quoted identifiers, dollar quotes and comments, with the
    parenthesis depth at each token: (token, depth)."""
    i, n, depth = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            level, i = 1, i + 2
            while i < n and level:
                if sql.startswith("/*", i):
                    level, i = level + 1, i + 2
                elif sql.startswith("*/", i):
                    level, i = level - 1, i + 2
                else:
                    i += 1
        elif c == "'":
            # E'..' escapes: a backslash escapes the next character; a
            # doubled quote is a quote either way.
            esc = i > 0 and sql[i - 1] in "eE"
            i += 1
            while i < n:
                if esc and sql[i] == "\\":
                    i += 2
                elif sql[i] == "'":
                    if i + 1 < n and sql[i + 1] == "'":
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
            yield ("'", depth)
        elif c == '"':
            j = i + 1
            while j < n:
                if sql[j] == '"':
                    if j + 1 < n and sql[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
            yield ('"', depth)
        elif c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", sql[i:])
            if m:
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
                yield ("$$", depth)
            else:
                m = re.match(r"\$[0-9]+", sql[i:])
                i += len(m.group(0)) if m else 1
                yield ("$", depth)
        elif c.isalpha() or c == "_":
            m = re.match(r"[A-Za-z_\u0080-\uffff][A-Za-z_0-9$\u0080-\uffff]*", sql[i:])
            w = m.group(0)
            i += len(w)
            yield (w.upper(), depth)
        elif c == "(":
            yield ("(", depth)
            depth += 1
            i += 1
        elif c == ")":
            depth -= 1
            yield (")", depth)
            i += 1
        else:
            yield (c, depth)
            i += 1


def classify(sql):
    """'read', 'lock' or 'other' for one statement."""
    toks = list(tokens(sql))
    words = [t for t, _ in toks if t != "("]
    if not words or words[0] not in READ_START:
        return "other"
    lock = False
    for k, (t, d) in enumerate(toks):
        prev = toks[k - 1][0] if k else ""
        if t in ("UPDATE", "SHARE") and prev in ("FOR", "KEY", "NO"):
            lock = True
        elif t in ("INSERT", "UPDATE", "DELETE", "MERGE"):
            return "other"          # a data-modifying CTE
        elif t == "INTO" and d == 0:
            return "other"          # SELECT INTO creates a table
    if words[-1] == ";":
        words = words[:-1]
    if ";" in words:
        return "other"              # several statements in one string
    return "lock" if lock else "read"


LOG_START = re.compile(r"^@@\|(\d+)\|([^|]*)\|([^|]*)\|([^|]*)\|@@ ([A-Z]+):  (.*)$")


def parse_log(path):
    """Yield (pid, app, db, user, level, message) records of a log written
    with log_line_prefix '@@|%p|%a|%d|%u|@@ '."""
    cur = None
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            line = line.rstrip("\n")
            m = LOG_START.match(line)
            if m:
                if cur:
                    yield cur
                cur = list(m.groups())
            elif cur is not None:
                cur[5] += "\n" + line
    if cur:
        yield cur


def schedule_groups(path):
    groups = {}
    g = 0
    with open(path) as f:
        for line in f:
            if line.startswith("test:"):
                g += 1
                for t in line.split()[1:]:
                    groups[t] = g
    return groups


def from_log(args):
    groups = schedule_groups(args.schedule)
    stmts = []
    last_by_pid = {}
    sessions = {}
    srcdir = os.path.realpath(args.srcdir)
    datadirs = {srcdir + "/data", os.path.realpath(args.datadir)}
    used_data = set()
    for pid, app, db, user, level, msg in parse_log(args.log):
        if not app.startswith("pg_regress/"):
            continue
        test = app.split("/", 1)[1]
        if level == "LOG" and msg.startswith("statement: "):
            q = msg[len("statement: "):]
            if (test, pid) not in sessions:
                sessions[(test, pid)] = sum(1 for k in sessions if k[0] == test)
            st = {"t": test, "g": groups.get(test, 0), "s": sessions[(test, pid)],
                  "u": user, "q": q}
            st["k"] = kind_of(st, db, srcdir, datadirs, used_data)
            stmts.append(st)
            last_by_pid[pid] = st
        elif level == "LOG" and msg.startswith("duration: "):
            st = last_by_pid.get(pid)
            if st is not None and "ms" not in st:
                st["ms"] = float(msg.split()[1])
        elif level in ("ERROR", "FATAL", "PANIC"):
            st = last_by_pid.get(pid)
            if st is not None and "e" not in st:
                st["e"] = msg.split("\n")[0][:200]
    os.makedirs(args.data_out, exist_ok=True)
    for name in sorted(used_data):
        src = os.path.join(args.datadir, name)
        with open(src, "rb") as fi, gzip.open(os.path.join(args.data_out, name + ".gz"), "wb", 9) as fo:
            shutil.copyfileobj(fi, fo)
    with gzip.open(args.out, "wt", 9, encoding="utf-8", errors="surrogateescape") as f:
        for st in stmts:
            f.write(json.dumps(st, ensure_ascii=False) + "\n")
    print_stats(stmts)


COPY_FROM_FILE = re.compile(r"^(\s*COPY\s.*?\bFROM\s+)'([^']*)'(.*)$", re.I | re.S)


def kind_of(st, db, srcdir, datadirs, used_data):
    q = st["q"]
    if db != "regression":
        return "skip:other database"
    if "/nonexistent" in q:
        return "skip:needs regress.so"
    m = COPY_FROM_FILE.match(q)
    if m:
        path = os.path.realpath(m.group(2))
        if os.path.dirname(path) in datadirs:
            name = os.path.basename(path)
            used_data.add(name)
            st["copy"] = name
            st["q"] = m.group(1) + "STDIN" + m.group(3)
            return "other"
        return "skip:copy from a file the corpus does not hold"
    if re.match(r"^\s*COPY\s", q, re.I) and re.search(r"\bFROM\s+STDIN\b", q, re.I):
        return "skip:copy from stdin (data not in the log)"
    if srcdir in q or "/tmp/" in q:
        return "skip:server file path"
    return classify(q)


# Functions whose side effects reach outside the statement (other sessions,
# the server, files, locks held past it) or that only waste time: a random
# query calling one is not kept.
UNSAFE = re.compile(r"\b(pg_terminate_backend|pg_cancel_backend|pg_sleep\w*|pg_\w*advisory\w*|"
                    r"set_config|pg_reload_conf|pg_rotate_logfile\w*|pg_switch_wal|pg_create_restore_point|"
                    r"pg_stat_reset\w*|pg_stat_clear_snapshot|lo_\w+|pg_notify|pg_promote|"
                    r"pg_log_backend_memory_contexts|pg_\w*replication_slot\w*|pg_replication_origin\w*|"
                    r"pg_import_system_collations|pg_read_\w*file|pg_ls_\w+|pg_stat_file|pg_file\w*|"
                    r"pg_\w*backup\w*|pg_wal_replay_\w+|pg_logical_emit_message|pg_logical_slot_\w+|"
                    r"pg_drop\w*|pg_copy_\w*slot|setseed|setval|pg_try_\w*|"
                    r"cached_query\w*|cache_\w+|dblink\w*)\b", re.I)


TABLESAMPLE = re.compile(r"(\btablesample\s+(?:system|bernoulli)\s*\([^()]*\))(?!\s*repeatable)", re.I)


def repeatable_samples(q):
    """sqlsmith's TABLESAMPLE clauses get a seed, so that the query gives the
    same rows every time (and becomes cacheable)."""
    return TABLESAMPLE.sub(r"\1 repeatable (7)", q)


def filter_sqlsmith(args):
    """Keep the generated queries that run directly, without error, within
    --max-ms, each in a transaction that is rolled back; write a corpus."""
    import psycopg2
    text = open(args.queries, encoding="utf-8", errors="surrogateescape").read()
    queries = [q.strip() for q in text.split(";\n") if q.strip()]
    conn = psycopg2.connect(dbname=args.dbname, options="-c statement_timeout=%d" % int(args.max_ms * 5))
    cur = conn.cursor()
    out, why = [], {}
    for q in queries:
        q = repeatable_samples(q)
        if UNSAFE.search(q):
            why["unsafe function"] = why.get("unsafe function", 0) + 1
            continue
        if classify(q) != "read":
            why["not a read"] = why.get("not a read", 0) + 1
            continue
        t = time.time()
        try:
            cur.execute("SELECT count(*) FROM (SELECT row_to_json(t)::jsonb::text FROM (\n%s\n) t) x" % q)
            n = cur.fetchone()[0]
            ms = (time.time() - t) * 1000
        except psycopg2.Error as e:
            conn.rollback()
            k = "error " + (e.pgcode or "?")
            why[k] = why.get(k, 0) + 1
            if conn.closed:
                sys.exit("the server died on: " + q)
            continue
        conn.rollback()
        if ms > args.max_ms:
            why["slower than --max-ms"] = why.get("slower than --max-ms", 0) + 1
            continue
        if n > args.max_rows:
            why["more than --max-rows rows"] = why.get("more than --max-rows rows", 0) + 1
            continue
        out.append({"t": "sqlsmith", "g": 0, "s": 0, "u": "postgres", "q": q, "k": "read",
                    "ms": round(ms, 3)})
        if len(out) >= args.keep:
            break
    with gzip.open(args.out, "wt", 9, encoding="utf-8", errors="surrogateescape") as f:
        for st in out:
            f.write(json.dumps(st, ensure_ascii=False) + "\n")
    print("%d generated, %d kept" % (len(queries), len(out)))
    for k, v in sorted(why.items(), key=lambda x: -x[1]):
        print("%8d  dropped: %s" % (v, k))


def load(path):
    with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            yield json.loads(line)


def print_stats(stmts):
    kinds = {}
    for st in stmts:
        kinds[st["k"]] = kinds.get(st["k"], 0) + 1
    for k in sorted(kinds):
        print("%8d  %s" % (kinds[k], k))
    print("%8d  statements, %d tests" % (len(stmts), len({s["t"] for s in stmts})))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("from-log")
    p.add_argument("log")
    p.add_argument("--schedule", required=True)
    p.add_argument("--datadir", required=True)
    p.add_argument("--srcdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--data-out", required=True)
    p = sub.add_parser("filter-sqlsmith")
    p.add_argument("queries")
    p.add_argument("--dbname", default="regression")
    p.add_argument("--max-ms", type=float, default=200)
    p.add_argument("--max-rows", type=int, default=2000)
    p.add_argument("--keep", type=int, default=3000)
    p.add_argument("--out", required=True)
    p = sub.add_parser("stats")
    p.add_argument("corpus")
    p.add_argument("--by-test", action="store_true")
    args = ap.parse_args()
    if args.cmd == "from-log":
        from_log(args)
    elif args.cmd == "filter-sqlsmith":
        filter_sqlsmith(args)
    else:
        print_stats(list(load(args.corpus)))


if __name__ == "__main__":
    main()
