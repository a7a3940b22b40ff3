#!/usr/bin/env python3
"""A minimal client of PostgreSQL's extended query protocol, for the tests.

It does what JDBC does with a fetch size: Parse (named or unnamed
statement), Bind with text parameters, Describe the portal, then Execute
with a row limit again and again until the portal is done, and Sync.
Neither psql nor libpq sends Execute with a row limit, hence this file.

Usage:
  pgwire.py --socket DIR --port N --db DB --user U --query SQL
            [--param V ...] [--fetch N] [--stmt NAME] [--repeat K]
            [--before SQL ...] [--between SQL ...] [--after SQL ...]

--before, --between (between two executions) and --after run as simple
queries in the same session (their rows are printed too).  Output, one line each: "desc name:typeoid,..." for the
row description of each execution, the rows as psql -A prints them
(columns joined by '|', NULL empty), "batches N" (the Execute messages that
execution took), then the simple queries' rows.  An error prints
"ERROR sqlstate message" and exits 3.  Trust authentication only.
"""
import argparse
import socket
import struct
import sys


class PgError(Exception):
    pass


class Conn:
    def __init__(self, sockdir, port, db, user):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect("%s/.s.PGSQL.%d" % (sockdir, port))
        self.buf = b""
        body = struct.pack("!i", 196608)
        for k, v in (("user", user), ("database", db)):
            body += k.encode() + b"\0" + v.encode() + b"\0"
        body += b"\0"
        self.s.sendall(struct.pack("!i", len(body) + 4) + body)
        while True:
            t, m = self.read()
            if t == b"R" and struct.unpack("!i", m[:4])[0] != 0:
                raise PgError("only trust authentication is supported")
            if t == b"E":
                raise PgError(error_text(m))
            if t == b"Z":
                return

    def send(self, t, body=b""):
        self.s.sendall(t + struct.pack("!i", len(body) + 4) + body)

    def read(self):
        while True:
            if len(self.buf) >= 5:
                n = struct.unpack("!i", self.buf[1:5])[0]
                if len(self.buf) >= 1 + n:
                    t, m = self.buf[:1], self.buf[5:1 + n]
                    self.buf = self.buf[1 + n:]
                    if t in (b"N", b"S", b"K", b"A"):
                        continue  # notices, settings, key data
                    return t, m
            chunk = self.s.recv(65536)
            if not chunk:
                raise PgError("connection closed")
            self.buf += chunk


def error_text(m):
    fields = {}
    for part in m.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode()
    return "%s %s" % (fields.get(b"C", "?"), fields.get(b"M", "?"))


def cstr(s):
    return s.encode() + b"\0"


def data_row(m):
    n = struct.unpack("!h", m[:2])[0]
    pos, cols = 2, []
    for _ in range(n):
        ln = struct.unpack("!i", m[pos:pos + 4])[0]
        pos += 4
        if ln < 0:
            cols.append("")
        else:
            cols.append(m[pos:pos + ln].decode())
            pos += ln
    return "|".join(cols)


def row_description(m):
    n = struct.unpack("!h", m[:2])[0]
    pos, cols = 2, []
    for _ in range(n):
        end = m.index(b"\0", pos)
        name = m[pos:end].decode()
        pos = end + 1
        _tab, _att, typ, _len, typmod, _fmt = struct.unpack("!ihihih", m[pos:pos + 18])
        pos += 18
        cols.append("%s:%d:%d" % (name, typ, typmod))
    return ",".join(cols)


def wait_for(c, wanted):
    """Read until a message of a type in wanted; raise on ErrorResponse."""
    out = []
    while True:
        t, m = c.read()
        if t == b"E":
            # the rest of the cycle up to ReadyForQuery
            c.send(b"S")
            while c.read()[0] != b"Z":
                pass
            raise PgError(error_text(m))
        if t == b"D":
            out.append(data_row(m))
            continue
        if t in wanted:
            return t, m, out


def extended(c, query, params, fetch, stmt, parse):
    if parse:
        c.send(b"P", cstr(stmt) + cstr(query) + struct.pack("!h", 0))
    body = cstr("") + cstr(stmt) + struct.pack("!h", 0) + struct.pack("!h", len(params))
    for p in params:
        v = p.encode()
        body += struct.pack("!i", len(v)) + v
    body += struct.pack("!h", 0)
    c.send(b"B", body)
    c.send(b"D", b"P" + cstr(""))
    c.send(b"E", cstr("") + struct.pack("!i", fetch))
    c.send(b"H")
    lines = []
    if parse:
        wait_for(c, (b"1",))
    wait_for(c, (b"2",))
    t, m, _ = wait_for(c, (b"T", b"n"))
    lines.append("desc " + (row_description(m) if t == b"T" else ""))
    batches = 1
    while True:
        t, m, rows = wait_for(c, (b"s", b"C"))
        lines.extend(rows)
        if t == b"C":
            break
        batches += 1
        c.send(b"E", cstr("") + struct.pack("!i", fetch))
        c.send(b"H")
    c.send(b"S")
    wait_for(c, (b"Z",))
    lines.append("batches %d" % batches)
    return lines


def simple(c, sql):
    c.send(b"Q", cstr(sql))
    lines = []
    while True:
        t, m = c.read()
        if t == b"E":
            err = error_text(m)
            while c.read()[0] != b"Z":
                pass
            raise PgError(err)
        if t == b"D":
            lines.append(data_row(m))
        if t == b"Z":
            return lines


def connection_args(ap):
    """The options that say which server and session (also pgwire_steps.py)."""
    ap.add_argument("--socket", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", default="postgres")
    ap.add_argument("--user", required=True)


def main():
    ap = argparse.ArgumentParser()
    connection_args(ap)
    ap.add_argument("--query", required=True)
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--fetch", type=int, default=0)
    ap.add_argument("--stmt", default="")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--before", action="append", default=[])
    ap.add_argument("--between", action="append", default=[])
    ap.add_argument("--after", action="append", default=[])
    a = ap.parse_args()
    out = []
    try:
        c = Conn(a.socket, a.port, a.db, a.user)
        for sql in a.before:
            out.extend(simple(c, sql))
        for i in range(a.repeat):
            if i > 0:
                for sql in a.between:
                    out.extend(simple(c, sql))
            # a named statement is parsed once; the unnamed one each time
            out.extend(extended(c, a.query, a.param, a.fetch, a.stmt,
                                i == 0 or a.stmt == ""))
        for sql in a.after:
            out.extend(simple(c, sql))
    except PgError as e:
        print("\n".join(out))
        print("ERROR %s" % e)
        sys.exit(3)
    print("\n".join(out))


if __name__ == "__main__":
    main()
