"""The best a budget can buy at first price, shared by `shading-bound.py`
and `kept-bound.py`. Requests are (site, hour, price to beat) triples; a
bid b wins a request whose price to beat is at most b and costs b; spend
is the sum of CPM prices / 1000, so `budget` is in thousandths."""
import bisect


def per_key(reqs, key, value, budget, lowest=0.01):
    """A price per `key(site, hour)` (a grid of 0.01 from `lowest` to
    `value`), chosen by one Lagrange multiplier over each key's win curve:
    (spend, impressions) at the most the budget allows."""
    grid = [i / 100 for i in range(round(lowest * 100), round(value * 100) + 1)]
    prices = {}
    for s, h, p in reqs:
        prices.setdefault(key(s, h), []).append(p)
    curves = []
    for ps in prices.values():
        ps.sort()
        curves.append([(b * bisect.bisect_right(ps, b), bisect.bisect_right(ps, b)) for b in grid])

    def allocate(lam):
        picks = [max(curve, key=lambda c: c[1] - lam * c[0]) for curve in curves]
        return sum(p[0] for p in picks), sum(p[1] for p in picks)

    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if allocate(mid)[0] > budget else (lo, mid)
    return allocate(hi)


def clairvoyant(reqs, value, budget):
    """The cheapest impressions first, each at its price to beat."""
    spend = n = 0
    for p in sorted(p for _, _, p in reqs):
        if p > value or spend + p > budget:
            break
        spend, n = spend + p, n + 1
    return spend, n
