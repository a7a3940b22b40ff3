#!/usr/bin/env python3
"""Step-by-step extended-protocol client for test/t/308_review_meaning.pl.

pgwire.py runs one statement the way JDBC does; the reviews need the
messages interleaved by hand: two portals bound before either is
executed, a fast-path function call (the protocol's FunctionCall
message, as libpq's PQfn sends it) between Bind and Execute, a second
session doing something in between.

Usage:
  pgwire_steps.py --socket DIR --port N --user U [--db DB] STEP ...

Each STEP is a JSON array:
  ["Q", sql]                   simple query; its rows are printed
  ["P", stmt, sql]             Parse (parameter types unspecified)
  ["B", portal, stmt, [p...]]  Bind, text parameters (null: NULL)
  ["E", portal, n]             Execute with row limit n (0: all); prints
                               the rows, then "suspended" or "complete"
  ["C", portal]                Close the portal
  ["S"]                        Sync
  ["F", func_oid, [arg...]]    fast-path function call, text arguments;
                               prints "fn <result>"
  ["X", sql]                   simple query on a second session (same
                               user and database)
  ["sleep", seconds]
An error prints "ERROR sqlstate message" (the remaining steps up to the
next Sync are skipped by the server, as the protocol says) and the
script goes on with the step after the next Sync step.
"""
import argparse
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pgwire import Conn, PgError, connection_args, cstr, data_row, error_text  # noqa: E402


def text_params(params):
    body = struct.pack("!h", 0) + struct.pack("!h", len(params))
    for p in params:
        if p is None:
            body += struct.pack("!i", -1)
        else:
            v = str(p).encode()
            body += struct.pack("!i", len(v)) + v
    return body


def until(c, wanted, out):
    """Read until a message of a type in wanted, printing rows; E raises."""
    while True:
        t, m = c.read()
        if t == b"E":
            raise PgError(error_text(m))
        if t == b"D":
            out.append(data_row(m))
            continue
        if t in wanted:
            return t, m


def simple(c, sql, out):
    c.send(b"Q", cstr(sql))
    err = None
    while True:
        t, m = c.read()
        if t == b"E":
            err = error_text(m)
        elif t == b"D":
            out.append(data_row(m))
        elif t == b"Z":
            break
    if err:
        out.append("ERROR %s" % err)


def main():
    ap = argparse.ArgumentParser()
    connection_args(ap)
    ap.add_argument("steps", nargs="*")
    a = ap.parse_args()
    c = Conn(a.socket, a.port, a.db, a.user)
    other = None
    out = []
    failed = False
    for raw in a.steps:
        st = json.loads(raw)
        op = st[0]
        if failed and op != "S":
            continue
        try:
            if op == "Q":
                simple(c, st[1], out)
            elif op == "X":
                if other is None:
                    other = Conn(a.socket, a.port, a.db, a.user)
                simple(other, st[1], out)
            elif op == "sleep":
                time.sleep(float(st[1]))
            elif op == "P":
                c.send(b"P", cstr(st[1]) + cstr(st[2]) + struct.pack("!h", 0))
                c.send(b"H")
                until(c, (b"1",), out)
            elif op == "B":
                c.send(b"B", cstr(st[1]) + cstr(st[2]) + text_params(st[3]) +
                       struct.pack("!h", 0))
                c.send(b"H")
                until(c, (b"2",), out)
            elif op == "E":
                c.send(b"E", cstr(st[1]) + struct.pack("!i", int(st[2])))
                c.send(b"H")
                t, _ = until(c, (b"s", b"C", b"I"), out)
                out.append("suspended" if t == b"s" else "complete")
            elif op == "C":
                c.send(b"C", b"P" + cstr(st[1]))
                c.send(b"H")
                until(c, (b"3",), out)
            elif op == "S":
                c.send(b"S")
                failed = False
                while c.read()[0] != b"Z":
                    pass
            elif op == "F":
                args = st[2]
                body = struct.pack("!i", int(st[1])) + struct.pack("!h", 0)
                body += struct.pack("!h", len(args))
                for x in args:
                    v = str(x).encode()
                    body += struct.pack("!i", len(v)) + v
                body += struct.pack("!h", 0)
                c.send(b"F", body)
                res = None
                err = None
                while True:
                    t, m = c.read()
                    if t == b"V":
                        n = struct.unpack("!i", m[:4])[0]
                        res = "" if n < 0 else m[4:4 + n].decode()
                    elif t == b"E":
                        err = error_text(m)
                    elif t == b"Z":
                        break
                out.append("ERROR %s" % err if err else "fn %s" % res)
            else:
                raise SystemExit("unknown step %r" % (op,))
        except PgError as e:
            out.append("ERROR %s" % e)
            failed = True
    print("\n".join(out))


if __name__ == "__main__":
    main()
