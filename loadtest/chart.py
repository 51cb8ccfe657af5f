#!/usr/bin/env python3
"""Latency percentiles against offered load, for the bidder and the floor.

Runs the release `loadtest` in open loop at each rate against the bidder and
against the bare floor server (same settings, same run), keeps every JSON
summary in --data, and draws p50 / p99 / p99.9 against offered load as an SVG
(no plotting library needed). Redraw from saved data with --plot-only.

    cargo build --release -p loadtest
    python3 loadtest/chart.py --target http://127.0.0.1:8080/openrtb2/bid \
        --floor http://127.0.0.1:8090/openrtb2/bid \
        --rates 5000,10000,20000,30000,40000,50000,60000 --duration 8 \
        --data loadtest/latency-vs-load.json --out loadtest/latency-vs-load.svg
"""

import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADTEST = os.path.join(ROOT, "target", "release", "loadtest")


def run(url, rate, duration, users, extra):
    command = [LOADTEST, "--target", url, "--rate", str(rate), "--duration", str(duration),
               "--users", str(users), "--json", *extra]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    summary["offered"] = rate
    print(f"{url} @ {rate}/s: {summary['rps']:.0f}/s p50 {summary['p50_ms']:.3f} "
          f"p99 {summary['p99_ms']:.3f} p99.9 {summary['p999_ms']:.3f} ms, errors {summary['errors']}",
          file=sys.stderr)
    return summary


def svg(series, title, out):
    """series: {label: [(offered, {p50_ms, p99_ms, p999_ms, rps}), ...]}"""
    width, height, left, right, top, bottom = 860, 520, 70, 190, 40, 60
    points = [p for rows in series.values() for _, p in rows]
    xs = [x for rows in series.values() for x, _ in rows]
    x_max = max(xs) * 1.05
    values = [p[k] for p in points for k in ("p50_ms", "p99_ms", "p999_ms") if p[k] > 0]
    y_min = 10 ** math.floor(math.log10(min(values)))
    y_max = 10 ** math.ceil(math.log10(max(values)))

    def px(x):
        return left + (width - left - right) * x / x_max

    def py(y):
        y = max(y, y_min)
        span = math.log10(y_max) - math.log10(y_min)
        return top + (height - top - bottom) * (1 - (math.log10(y) - math.log10(y_min)) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']
    decade = y_min
    while decade <= y_max:
        for m in (1, 2, 5):
            y = decade * m
            if y_min <= y <= y_max:
                parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                             f'stroke="#ddd"/><text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:g}</text>')
        decade *= 10
    step = 10 ** math.floor(math.log10(x_max / 2))
    x = 0
    while x <= x_max:
        parts.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{height - bottom}" stroke="#eee"/>'
                     f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{x / 1000:g}k</text>')
        x += step
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 18}" text-anchor="middle">'
                 'offered load (requests/s, open loop)</text>')
    parts.append(f'<text transform="translate(18,{(top + height - bottom) / 2}) rotate(-90)" '
                 'text-anchor="middle">latency from intended send (ms, log)</text>')
    colours = {"bidder": "#c0392b", "floor": "#2471a3"}
    dashes = {"p50_ms": "", "p99_ms": "6,3", "p999_ms": "2,3"}
    legend_y = top + 10
    for label, rows in series.items():
        rows = sorted(rows, key=lambda r: r[0])
        for key, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
            path = " ".join(f"{px(x):.1f},{py(p[key]):.1f}" for x, p in rows)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colours.get(label, "#555")}" '
                         f'stroke-width="2" stroke-dasharray="{dashes[key]}"/>')
            for x, p in rows:
                parts.append(f'<circle cx="{px(x):.1f}" cy="{py(p[key]):.1f}" r="2.5" '
                             f'fill="{colours.get(label, "#555")}"/>')
            parts.append(f'<line x1="{width - right + 12}" x2="{width - right + 42}" y1="{legend_y}" '
                         f'y2="{legend_y}" stroke="{colours.get(label, "#555")}" stroke-width="2" '
                         f'stroke-dasharray="{dashes[key]}"/><text x="{width - right + 48}" '
                         f'y="{legend_y + 4}">{label} {name}</text>')
            legend_y += 18
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(1):.1f}" y2="{py(1):.1f}" stroke="#27ae60" '
                 f'stroke-dasharray="8,4"/><text x="{width - right + 12}" y="{py(1) + 4:.1f}" '
                 'fill="#27ae60">1 ms goal (p99)</text>')
    parts.append("</svg>")
    with open(out, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="http://127.0.0.1:8080/openrtb2/bid")
    parser.add_argument("--floor", default="http://127.0.0.1:8090/openrtb2/bid")
    parser.add_argument("--rates", default="5000,10000,20000,30000,40000,50000")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--data", default=os.path.join(ROOT, "loadtest", "latency-vs-load.json"))
    parser.add_argument("--out", default=os.path.join(ROOT, "loadtest", "latency-vs-load.svg"))
    parser.add_argument("--title", default="Bullseye vs bare hyper floor, 2 vCPU shared with the load generator")
    parser.add_argument("--plot-only", action="store_true")
    args = parser.parse_args()
    if args.plot_only:
        with open(args.data) as f:
            data = json.load(f)
    else:
        data = {"bidder": [], "floor": []}
        for rate in (int(r) for r in args.rates.split(",")):
            # Floor and bidder back to back at each rate: same machine state.
            data["floor"].append(run(args.floor, rate, args.duration, args.users, []))
            data["bidder"].append(run(args.target, rate, args.duration, args.users, []))
        with open(args.data, "w") as f:
            json.dump(data, f, indent=1)
    series = {label: [(row["offered"], row) for row in rows] for label, rows in data.items()}
    svg(series, args.title, args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
