#!/usr/bin/env python3
"""The best a campaign could have bought on the requests it kept: reads a
`loadtest simulate --bids-log DIR` run and prices, for one campaign, the
requests it bid on under `bullseye` (the ones our other campaigns left
it), knowing each one's price to beat after the fact:

- one price for the day, a price per site and hour (a Lagrange multiplier
  over each one's win curve), and clairvoyant (the cheapest impressions
  first), each spending the budget, first price;
- against what `bullseye` and `fixed_shading` actually bought (impressions
  per unit of media).

It assumes what the default run is: first price (a won impression costs
its bid), one measured day (the budget is a day's; the log's hour is the
hour of the day). The bound spends the budget freely over the day, which
even pacing does not, so it can only be too high; and it is for the
requests the campaign kept under `bullseye` in this run (bidding
otherwise, it would have kept others: the log of `fixed_shading` holds
the set that strategy kept).

Usage: loadtest/simulate/kept-bound.py DIR [CAMPAIGN] [BUDGET] [VALUE] [STRATEGY]
       (defaults cpm-even, 20, 1.20, bullseye: the default campaigns' `cpm-even`)
"""
import csv
import sys

from budget_prices import clairvoyant, per_key

folder = sys.argv[1]
campaign = sys.argv[2] if len(sys.argv) > 2 else "cpm-even"
budget = float(sys.argv[3]) if len(sys.argv) > 3 else 20.0
value = float(sys.argv[4]) if len(sys.argv) > 4 else 1.20
kept_by = sys.argv[5] if len(sys.argv) > 5 else "bullseye"
BUDGET = budget * 1000  # spend = sum of CPM prices / 1000


def bids(strategy):
    with open(f"{folder}/{strategy}.csv") as f:
        return [r for r in csv.DictReader(f) if r["campaign"] == campaign]


def bought(rows):
    won = [float(r["bid"]) for r in rows if r["won"] == "1"]
    return len(won), sum(won) / 1000


def one_price(reqs):
    """One bid for every request: the highest that stays within the budget
    (bidding a request's price to beat wins it and every cheaper one)."""
    best = (0.0, 0)
    for won, price in enumerate(sorted(p for _, _, p in reqs), start=1):
        if price > value or price * won > BUDGET:
            break
        best = (price * won, won)
    return best


kept = bids(kept_by)
reqs = [(r["site"], r["hour"], float(r["to_beat"])) for r in kept]
fixed_n, fixed_media = bought(bids("fixed_shading"))
fixed = fixed_n / fixed_media
n, media = bought(kept)
print(f"{campaign}: bid on {len(kept)} requests under {kept_by}; "
      f"fixed_shading bought {fixed_n} for {fixed_media:.2f} of media")
print(f"{kept_by + ' bought':26} {n:6} for {media:5.2f}: {n / media / fixed:.2f}x the fixed factor")
spend, won = one_price(reqs)
print(f"{'one price':26} {won:6} for {spend / 1000:5.2f}: {won / (spend / 1000) / fixed:.2f}x")
for name, key in (("a price per site", lambda s, h: s), ("per site and hour", lambda s, h: (s, h))):
    spend, won = per_key(reqs, key, value, BUDGET)
    print(f"{name:26} {won:6} for {spend / 1000:5.2f}: {won / (spend / 1000) / fixed:.2f}x")
spend, won = clairvoyant(reqs, value, BUDGET)
print(f"{'clairvoyant':26} {won:6} for {spend / 1000:5.2f}: {won / (spend / 1000) / fixed:.2f}x")
