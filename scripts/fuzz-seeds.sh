#!/usr/bin/env bash
# Writes seed inputs for the fuzz targets into fuzz/corpus/<target>/: real-format
# messages from the recordings (every 50th frame or response) and a few malformed ones.
# Idempotent: files are named by their content's hash.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import hashlib, json, os

def put(target, data):
    folder = f"fuzz/corpus/{target}"
    os.makedirs(folder, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(f"{folder}/{name}", "wb") as f:
        f.write(data)

def entries(path):
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f):
            if number > 0:
                yield json.loads(line)

for number, entry in enumerate(entries("recordings/binance.jsonl")):
    if number % 50 == 0:
        put("binance", entry["text"].encode())
for number, entry in enumerate(entries("recordings/coinbase.jsonl")):
    if "text" in entry and number % 50 == 0:
        put("coinbase", entry["text"].encode())
for entry in entries("recordings/coingecko.jsonl"):
    put("coingecko", entry["body"].encode())
for number, entry in enumerate(entries("recordings/news.jsonl")):
    if number % 5 == 0:
        put("rss", entry["body"].encode())
put("rss", b'{"status":"error","code":"rateLimited","message":"slow down"}')
for target in ["binance", "coinbase", "coingecko", "rss"]:
    for bad in [b"", b"{", b"[]", b'{"p":"NaN"}', b"\xff\xfe\x00", b'{"e":1e400}']:
        put(target, bad)
print({t: len(os.listdir(f"fuzz/corpus/{t}")) for t in ["binance", "coinbase", "coingecko", "rss"]})
PY
