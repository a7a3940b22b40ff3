#!/usr/bin/env python3
"""test/bench/l1_policy_model.py - the local tier's replacement policy, modelled.

A model of src/l1.c's admission and eviction, run over the key stream
test/bench/zipf_bench.sh uses (Zipf keys, one entry size), to compare the
L1 hit rate with the ideal (the share of calls to the hottest `capacity`
keys) and with variants of the policy, without a server and without noise.

  l1.c        what src/l1.c does: while full, a key is admitted only the
              second time in a row its doorkeeper slot (4,096) sees it; the
              victim is the least valuable of 8 sampled entries, value
              (hits + 1) x cost / bytes; the other sampled entries' hits
              halve (aging on every sample)
  periodic    the same, but every entry's hits halve once every
              10 x capacity calls instead of on each sample
  frequency   a candidate replaces the least frequent of 8 sampled entries
              only if it was called more often (TinyLFU's admission; exact
              counts here, a count-min sketch in practice), counts halved
              every 10 x capacity calls

Usage: python3 test/bench/l1_policy_model.py [--keys 20000] [--s 1.01]
           [--calls 400000] [--capacity 186 1858] [--cost-noise 0.7]
The first half of the calls warms up; the hit rate is over the second.
--cost-noise draws each entry's cost from a log-normal (sigma): the cost
src/l1.c stores is one call's elapsed time, noisy on a busy server.
Measured against the server (zipf_bench.sh, 20,000 keys, s = 1.01):
l1.c 0.455 at 186 entries and 0.719 at 1,858; this model gives 0.454-0.462
and 0.720-0.730.
"""
import argparse
import bisect
import math
import random


def zipf_stream(n, s, calls, seed=1):
    weights = [k ** -s for k in range(1, n + 1)]
    total = sum(weights)
    cdf, acc = [], 0.0
    for w in weights:
        acc += w / total
        cdf.append(acc)
    rnd = random.Random(seed)
    keys = [min(bisect.bisect_left(cdf, rnd.random()), n - 1) + 1 for _ in range(calls)]
    return keys, weights, total


class Table:
    """Resident keys with O(1) random sampling and removal."""

    def __init__(self):
        self.slots, self.pos = [], {}

    def __contains__(self, k):
        return k in self.pos

    def __len__(self):
        return len(self.slots)

    def add(self, k):
        self.pos[k] = len(self.slots)
        self.slots.append(k)

    def remove(self, k):
        j = self.pos.pop(k)
        last = self.slots.pop()
        if last != k:
            self.slots[j] = last
            self.pos[last] = j

    def sample(self, rnd, n):
        return [self.slots[rnd.randrange(len(self.slots))] for _ in range(n)]


def run_l1(keys, cap, aging, cost_noise, sample=8, doorkeeper=4096):
    rnd = random.Random(2)
    table, hits, cost, door = Table(), {}, {}, [0] * doorkeeper
    served = counted = since_aging = 0
    for i, k in enumerate(keys):
        measured = i >= len(keys) // 2
        counted += measured
        if aging == "periodic":
            since_aging += 1
            if since_aging >= 10 * cap:
                since_aging = 0
                for x in hits:
                    hits[x] //= 2
        if k in table:
            hits[k] += 1
            served += measured
            continue
        if len(table) >= cap:
            slot = hash((k, 7)) % doorkeeper
            if door[slot] != k:
                door[slot] = k
                continue
            door[slot] = 0
            sampled = table.sample(rnd, sample)
            victim = min(sampled, key=lambda x: (hits[x] + 1) * cost[x])
            if aging == "sample":
                for x in sampled:
                    if x != victim:
                        hits[x] //= 2
            table.remove(victim)
            del hits[victim], cost[victim]
        table.add(k)
        hits[k] = 0
        cost[k] = math.exp(rnd.gauss(0, cost_noise)) if cost_noise else 1.0
    return served / counted


def run_frequency(keys, cap, sample=8):
    rnd = random.Random(2)
    table, freq = Table(), {}
    served = counted = since_aging = 0
    for i, k in enumerate(keys):
        measured = i >= len(keys) // 2
        counted += measured
        freq[k] = freq.get(k, 0) + 1
        since_aging += 1
        if since_aging >= 10 * cap:
            since_aging = 0
            freq = {x: c // 2 for x, c in freq.items() if c > 1}
        if k in table:
            served += measured
        elif len(table) < cap:
            table.add(k)
        else:
            victim = min(table.sample(rnd, sample), key=lambda x: freq.get(x, 0))
            if freq.get(k, 0) > freq.get(victim, 0):
                table.remove(victim)
                table.add(k)
    return served / counted


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keys", type=int, default=20000)
    ap.add_argument("--s", type=float, default=1.01)
    ap.add_argument("--calls", type=int, default=400000)
    ap.add_argument("--capacity", type=int, nargs="+", default=[186, 1858])
    ap.add_argument("--cost-noise", type=float, default=0.7)
    a = ap.parse_args()
    keys, weights, total = zipf_stream(a.keys, a.s, a.calls)
    print(f"{a.keys} keys, s = {a.s}, {a.calls} calls (hit rate over the second half)")
    print(f"{'capacity':>9} {'top-k':>7} {'l1.c':>7} {'l1.c*':>7} {'periodic':>9} {'frequency':>10}")
    for cap in a.capacity:
        print(f"{cap:9d} {sum(weights[:cap]) / total:7.3f}"
              f" {run_l1(keys, cap, 'sample', 0.0):7.3f}"
              f" {run_l1(keys, cap, 'sample', a.cost_noise):7.3f}"
              f" {run_l1(keys, cap, 'periodic', a.cost_noise):9.3f}"
              f" {run_frequency(keys, cap):10.3f}")
    print(f"(l1.c* and periodic: costs with log-normal noise, sigma {a.cost_noise})")


if __name__ == "__main__":
    main()
