"""The comparison runner, started by ./compare.sh (python -m compare).

cli        the command line, read once into a Plan
targets    the two apps: found, checked, read through /status
pinning    the cores of the apps and of the load tool (--pin); serve.launch starts the apps
loadtools  wrk, ab, hey and openloop: command lines and output parsers
openloop   the open-loop generator of fixed-rate runs, run as a script of its own
floor      openloop's own floor: its latency against trivial_server, at a rate, on given cores
run        one counted run and what the app and its server spent on it
statistics medians, spreads, ratios and verdicts
report     the table, report.json, report.md and the charts
"""
