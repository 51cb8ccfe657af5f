#!/usr/bin/env python3
"""How many impressions per unit of media a budget can buy in a replica of
the default market, at best, for `cpm-even`'s learned-shading goal (issue
15: >= 1.25x the fixed factor's impressions per unit budget). A replica:
its own random draws of the simulator's formulas, not the simulator's
seeded market, so an illustration of what limits the goal rather than a
bound on a simulated run.

It replays the market's shape as `loadtest/src/simulate/market.rs` pins it
(200 Zipf sites with a factor x0.5-x1.5 and a log-normal floor, the daily
traffic curve, the hour factor, 5 competitors each bidding 0.6-1.2x a
log-normal value around 1.00 CPM x site x hour), 12,000 requests an hour,
with its own random draws (not the simulator's seed), and a 300x250
campaign worth 1.20 CPM with a daily budget of 20, under first price:

- fixed: the fixed factor's bid (0.85 x 1.20 = 1.02) on a random share of
  the requests it wins (the baseline);
- one price: the single bid that spends the budget (the best a bidder
  that sees only the hour can do, near enough: competition varies by hour
  by +-20 %);
- a price per site, and per site and hour: the best bid per site (or per
  site and hour) for the budget (a Lagrange multiplier over each one's win
  curve), knowing each one's competition;
- clairvoyant: the cheapest impressions of the day, knowing each request's
  price to beat (no bidder can).

Each with all the requests (the campaign alone) and with a random share of
them (in the default simulation our other campaigns take most of them:
cpm-even bids on about 80,500 of the day's 288,000 there, 28 %; which ones
they leave it is not random, so the shares here only show the direction).

Usage: loadtest/simulate/shading-bound.py [SEED]
"""
import bisect
import math
import random
import sys

from budget_prices import clairvoyant, per_key

random.seed(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
SITES, COMPETITORS, PER_HOUR = 200, 5, 12_000
VALUE, FIXED_BID, BUDGET = 1.20, 1.02, 20.0 * 1000  # spend = sum of CPM prices / 1000


def zipf_cdf(n, s):
    weights = [1 / k**s for k in range(1, n + 1)]
    total, acc, out = sum(weights), 0.0, []
    for w in weights:
        acc += w / total
        out.append(acc)
    return out


site_cdf = zipf_cdf(SITES, 0.9)
factor = [random.uniform(0.5, 1.5) for _ in range(SITES)]
floor = [0.20 * math.exp(0.5 * random.gauss(0, 1)) for _ in range(SITES)]
traffic = [0.6 + 0.4 * math.cos((h - 20) / 24 * 2 * math.pi) for h in range(24)]
traffic = [t / sum(traffic) for t in traffic]
hour_factor = [1 + 0.2 * math.cos((h - 14) / 24 * 2 * math.pi) for h in range(24)]

# (site, the price to beat: the highest competing bid or the floor)
requests = []
for h in range(24):
    for _ in range(int(PER_HOUR * 24 * traffic[h])):
        s = min(bisect.bisect_left(site_cdf, random.random()), SITES - 1)
        scale = factor[s] * hour_factor[h]
        highest = max(scale * math.exp(0.5 * random.gauss(0, 1)) * random.uniform(0.6, 1.2) for _ in range(COMPETITORS))
        requests.append((s, h, max(highest, floor[s])))


def at_price(reqs, bid):
    won = [p for _, _, p in reqs if bid >= p]
    return bid * len(won), len(won)


def one_price(reqs):
    lo, hi = 0.01, VALUE
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at_price(reqs, mid)[0] < BUDGET else (lo, mid)
    return at_price(reqs, hi)


def priced_by(key):
    return lambda reqs: per_key(reqs, key, VALUE, BUDGET, lowest=0.10)


spend, won = at_price(requests, FIXED_BID)
fixed = won / spend
print(f"fixed factor: bids {FIXED_BID}, {1000 * fixed:.0f} impressions per unit of media "
      f"(at full throttle it would spend {spend / 1000:.1f} of the budget's 20)")
shares = [("alone", requests)]
for share in (0.5, 0.28):
    shares.append((f"a random {share:.0%}", [r for r in requests if random.random() < share]))
strategies = (
    ("one price", one_price),
    ("a price per site", priced_by(lambda s, h: s)),
    ("per site and hour", priced_by(lambda s, h: (s, h))),
    ("clairvoyant", lambda reqs: clairvoyant(reqs, VALUE, BUDGET)),
)
for label, reqs in shares:
    for name, best in strategies:
        spend, n = best(reqs)
        print(f"{label:18} {name:17} {n:6} impressions for {spend / 1000:5.2f}: {n / spend / fixed:.2f}x the fixed factor")
