#!/usr/bin/env python3
"""Issue 15's goals against simulator runs.

Usage: goals.py RUN.json [RUN.json ...]

Each file is the last line of `loadtest simulate --json` (the whole output
works too: the last line is read). Prints, per run and campaign, each goal's
ratio and whether it is met:

- CPC: `bullseye`'s clicks per 1,000 charged at least 1.3x `flat`'s and 0.8x
  the `oracle`'s; CPA: the same with conversions.
- Even pacing, where traffic is ample (the oracle, bidding the true values,
  spends at least 98 % of the cap): `bullseye` spends 98-100 % of the cap and
  every hour's share of the spend is within 2 points of its share of the
  traffic.
- Learned shading (first price): `bullseye` buys at least 1.25x
  `fixed_shading`'s impressions per unit of media cost at the same or a
  higher spend fraction ("the same": within half a point; past the cap
  counts as the cap).

A ratio where either side has fewer than MIN_EVENTS clicks or conversions
is printed but not judged (on 5 events a ratio's own noise is about
+-45 %): a goal is not met when a judged comparison fails, met when both
are judged and pass, else not judged; nor is a
shading ratio where either strategy bought fewer than MIN_IMPRESSIONS.
Spend fractions are judged as printed, to a tenth of a percent.
"""

import json
import sys

MIN_EVENTS = 20
MIN_IMPRESSIONS = 1_000
SAME_SPEND = 0.005


def last_json(path):
    with open(path) as f:
        lines = [line for line in f if line.startswith("{")]
    return json.loads(lines[-1])


def by_id(run, strategy):
    return {c["id"]: c for c in run["strategies"][strategy]["campaigns"]}


def ratio(a, b):
    return a / b if b else float("inf")


def verdict(ok):
    return "met" if ok else "NOT met"


def response_goal(name, figures, key, events_key):
    b, f, o = (figures[s][name] for s in ("bullseye", "flat", "oracle"))
    over_flat, over_oracle = ratio(b[key], f[key]), ratio(b[key], o[key])
    flat = "flat buys none" if f[key] == 0 else f"{over_flat:.2f}x flat"
    line = (
        f"{b[key]:8.1f} per 1,000 charged: {flat}, {over_oracle:.2f}x oracle, "
        f"{b[events_key]} {events_key} (flat {f[events_key]}, oracle {o[events_key]}), "
        f"{100 * b['spend_fraction']:.1f} % spent"
    )
    # Each comparison is judged only when both sides have the events.
    parts = [
        (min(b[events_key], other[events_key]) >= MIN_EVENTS, passed)
        for other, passed in ((f, over_flat >= 1.3), (o, over_oracle >= 0.8))
    ]
    if any(judged and not passed for judged, passed in parts):
        return line + ": NOT met"
    if all(judged for judged, _ in parts):
        return line + ": met"
    return line + f": too few {events_key} to judge"


def pacing_goal(name, figures):
    b, o = figures["bullseye"][name], figures["oracle"][name]
    spent, gap = b["spend_fraction"], b["hourly_share_gap_pp"]
    line = f"{100 * spent:.1f} % of cap, largest hourly gap {gap:.1f} points"
    if o["spend_fraction"] < 0.98:
        return line + f": traffic not ample (the oracle spends {100 * o['spend_fraction']:.1f} %)"
    # Judged as printed (to a tenth of a percent).
    return line + ": " + verdict(98.0 <= round(100 * spent, 1) <= 100.0 and gap <= 2.0)


def shading_goal(name, figures):
    b, f = figures["bullseye"][name], figures["fixed_shading"][name]

    def per_media(c):
        return c["impressions"] / c["media_cost_micros"] if c["media_cost_micros"] else 0.0

    r = ratio(per_media(b), per_media(f))
    bs, fs = b["spend_fraction"], f["spend_fraction"]
    line = f"{r:.2f}x the fixed factor's impressions per media, spending {100 * bs:.1f} % vs {100 * fs:.1f} %"
    if min(b["impressions"], f["impressions"]) < MIN_IMPRESSIONS:
        return line + ": too few impressions to judge"
    # Spending past the cap (a click's charge over it) is no merit.
    return line + ": " + verdict(r >= 1.25 and min(bs, 1.0) >= min(fs, 1.0) - SAME_SPEND)


def main(paths):
    for path in paths:
        run = last_json(path)
        figures = {s: by_id(run, s) for s in run["strategies"]}
        print(f"== {path}: seed {run['seed']}, {run['auction']} price")
        for name, c in figures["bullseye"].items():
            pricing, pacing = c["pricing"], c["pacing"]
            if pricing == "cpc":
                print(f"  {name:10} CPC      {response_goal(name, figures, 'clicks_per_1000', 'clicks')}")
            elif pricing in ("cpa", "cps"):
                print(f"  {name:10} CPA      {response_goal(name, figures, 'conversions_per_1000', 'conversions')}")
            if pacing == "even":
                print(f"  {name:10} pacing   {pacing_goal(name, figures)}")
            if run["auction"] == "first" and "fixed_shading" in figures:
                print(f"  {name:10} shading  {shading_goal(name, figures)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
