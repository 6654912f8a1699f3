"""`make bench`: latency, bytes and request counts of the service's hot paths, in one process.

Everything runs locally: moto's in-process AWS (never real AWS) and HTTP servers on 127.0.0.1.
Numbers are for comparison within one run (ratios against a baseline measured alongside),
not absolute targets; nothing here asserts on timings.
"""
