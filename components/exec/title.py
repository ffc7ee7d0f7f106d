#!/usr/bin/env python3
"""A component for core/Exec in Python: title-cases each line.

core/Exec writes each IP to stdin as a line and sends each line printed on stdout on as an IP.
With bracket markers set ({"open": "<<", "close": ">>"}), brackets arrive as lines starting
with a marker: they are passed on unchanged, so substreams survive the trip.

    'python3' -> PROGRAM Title(core/Exec)
    '["components/exec/title.py"]' -> ARGS Title

Run with: flowd run --allow-exec /usr/bin/python3 GRAPH
"""
import sys

for line in sys.stdin:
    line = line.rstrip("\n")
    if not line.startswith(("<<", ">>")):
        line = line.title()
    # Flushed at once: the answer to an IP should not wait for the buffer to fill.
    print(line, flush=True)
