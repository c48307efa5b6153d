"""The comparison runner, started by ./compare.sh (python -m compare).

cli        the command line, read once into a Plan
plan       the Plan: what to run, frozen; the scenarios and apps it names
flag_values the flags' values read from their text, and the Parser that refuses one in one line
exits      compare.sh's exit codes and what each means
failures   a benchmark's failure after its flags: one line, and compare.sh's exit code
targets    the two apps: found, checked, read through /status
pinning    the cores of the apps and of the load tool (--pin); serve.launch starts the apps
loadtools  wrk, ab, hey and openloop: command lines and output parsers
openloop   the open-loop generator of fixed-rate runs, run as a script of its own: flags, main
schedule   what one openloop run sends, and when each request is due
generator  openloop's dispatch at the due times over its pool of keep-alive connections
http_response  one HTTP/1.x response read off a connection, for the generator
openloop_result  what openloop prints, and its percentiles
floor      openloop's own floor: its latency against trivial_server, at a rate, on given cores
measure    one counted run and what the app and its server spent on it
poller     the readings of /status during a run
run        what a counted run records: its Level, its Polls, the Run and its derived figures
procedure  what each repeat runs, in which order, and the rates it sets
figures    each repeat's figures per app: the cost line, capacity, latency at load, PSS
statistics estimates across the launches: intervals, tests against each figure's margin,
           power, Holm's correction, batches pooled as a random effect, and their words
pool       compare --from: several batches' reports pooled into one
numbers    numbers written for people
report     the table, report.json and report.md; charts draws the PNGs
headline   report.md's answer: a row per scenario, the instruction counts, the estimates
detail     report.md's detail: the cost of a request, latency, capacity, environment
sentences  what the table and report.md say in words: repeats, styles, database
cells      the tables' cells written for people, and report.md's table form
instructions what a request costs an app's own callable in instructions (callgrind)
app_driver the app called in-process, as instructions runs it under valgrind
own_work   the work behind each route that both apps do alike, as app_driver counts it
whole_request  what a request costs the whole serving stack in instructions, and its kernel side
whole_counts   those counts as reports read them, and whether a wall-clock estimate agrees
callgrind_control  processes under callgrind zeroed and dumped while they run (vgdb)
callgrind_out  what a callgrind out file counts, per object
stack      the processes of the stack up.sh started, each named by its part
keepalive  requests over keep-alive connections held open, each answer read whole
answers    the right answer to each scenario's request
kernel_side  system calls (strace) and context switches (/proc) of a window of requests
"""
