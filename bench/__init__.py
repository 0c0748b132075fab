"""Load benchmark: the gateway (socket.io) against vanilla Rasa (REST), same model, same run.

`python -m bench --help`; `make bench` runs the documented configuration and writes
docs/benchmarks.md. Loopback only; every loop is bounded in count and time.
"""
