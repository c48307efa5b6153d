"""The comparison runner, started by ./compare.sh (python -m compare).

cli        the command line, read once into a Plan
targets    the two apps: found, checked, read through /status
launcher   the cores of the apps and of the load tool, and the apps launched here
loadtools  wrk, ab, hey and openloop: command lines and output parsers
run        one counted run and what the app and its server spent on it
stats      medians, spreads, ratios and verdicts
report     the table, report.json, report.md and the charts
instructions  instructions per request of an app's callable, counted by callgrind
app_driver    what instructions runs under valgrind: the app called in-process
"""
