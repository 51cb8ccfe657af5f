#!/usr/bin/env python3
"""The differential check of issue 14: every corpus request through two
builds of the bidder (e.g. the one before a performance change and the one
after), on the bundled config, and their answers compared byte for byte
once what must differ is normalised: bid ids, times (`t`, `e`), the masked
user key (`u`, masked per bid id), the URL signature (`s=` before the
keyed-hash tags, `sig=` after) and the host:port each server runs on.

Usage: loadtest/differential.py OLD_BINARY NEW_BINARY   (from the repository root)
Prints each request whose answers differ, and a count; exits 1 if any does.
"""
import json, os, re, subprocess, sys, time, urllib.request, tempfile, glob
def serve(binary, port):
    data = tempfile.mkdtemp()
    p = subprocess.Popen([binary, "serve", "--config", "bidder-config", "--listen", f"127.0.0.1:{port}",
                          "--admin-listen", f"127.0.0.1:{port+1}", "--data-dir", data],
                         cwd=os.getcwd(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"); break
        except Exception: time.sleep(0.1)
    return p
def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/openrtb2/bid", data=body, headers={"content-type": "application/json"})
    try:
        r = urllib.request.urlopen(req); return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
def norm(text):
    t = text.decode("utf-8", "replace")
    t = re.sub(r'127.0.0.1:18[56]00', 'HOST', t)
    t = re.sub(r'"(id|bidid)":"[0-9a-f]{16}"', r'"\1":"ID"', t)
    t = re.sub(r'b=[0-9a-f]{16}', 'b=ID', t)
    t = re.sub(r'(&|&amp;)(t|e)=\d+', r'\1\2=TIME', t)
    t = re.sub(r'(&|&amp;)u=[0-9a-f]{16}', r'\1u=USER', t)
    t = re.sub(r'(&|&amp;)(s|sig)=[A-Za-z0-9_-]{22}(?=["&\\\]<]|$)', r'\1SIG', t)
    return t
old, new = serve(sys.argv[1], 18500), serve(sys.argv[2], 18600)
files = sorted(glob.glob("../shared/corpus/requests/**/*.json", recursive=True))
same = differ = bids = 0
for f in files:
    body = open(f, "rb").read()
    a, b = post(18500, body), post(18600, body)
    if a[0] == b[0] and norm(a[1]) == norm(b[1]):
        same += 1
        bids += a[0] == 200
    else:
        differ += 1
        print("DIFFER", f, a[0], b[0]); print(" old", norm(a[1])[:600]); print(" new", norm(b[1])[:600])
print(f"{len(files)} requests: {same} identical after normalisation ({bids} of them bids), {differ} differ")
old.kill(); new.kill()
sys.exit(1 if differ else 0)
