"""compare.cli: flags read into a Plan, and bad flags refused with exit 2 and their name."""

import pytest

from compare import cli
from compare.exits import EXIT_CODES
from compare.plan import DATABASE_SCENARIOS, SCENARIOS


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--connections", "0"], "--connections"),
        (["--connections", "8,x"], "--connections"),
        (["--connections", "8,8"], "--connections"),
        (["--connections"], "--connections"),
        (["--scenarios", "hello,upload"], "--scenarios"),
        (["--duration", "0"], "--duration"),
        (["--repeats", "-1"], "--repeats"),
        (["--warmup", "-3"], "--warmup"),
        (["--poll", "0"], "--poll"),
        (["--io-ms", "20000"], "--io-ms"),
        (["--cpu-n", "1"], "--cpu-n"),
        (["--max-error-rate", "1.5"], "--max-error-rate"),
        (["--tool", "siege"], "--tool"),
        (["--rate", "0"], "--rate"),
        (["--rate", "nan"], "--rate"),
        (["--rate", "inf"], "--rate"),
        (["--rate", "100,100"], "--rate"),
        (["--rate", "1000000"], "--rate"),
        (["--workers", "0"], "--workers"),
        (["--launch", "--workers", "65"], "--workers"),
        (["--workers", "2"], "--workers needs --launch"),
        (["--pin", "--no-pin"], "--no-pin"),
        (["--flask", "http://127.0.0.1:9", "--fastapi", "http://127.0.0.1:9/"], "same URL"),
        (["--flask", "localhost:8080"], "--flask: 'localhost:8080' is not an app's URL"),
        (["--fastapi", "127.0.0.1:8081"], "--fastapi"),
        (["--flask", "http://127.0.0.1:99999"], "--flask"),
        (["--flask", "http://:8080"], "--flask"),
        (["--flask", "ftp://127.0.0.1:8080"], "--flask"),
        (["--flask", ""], "--flask"),
        (["--fractions", "0"], "--fractions"),
        (["--fractions", "0.5,1.5"], "--fractions"),
        (["--fractions", "0.5,0.5"], "--fractions"),
        (["--fractions", "0.5", "--rate", "100"], "not allowed with"),
        (["--same-app", "django"], "--same-app"),
        (["--arrivals", "bursty"], "--arrivals"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**32)], "--seed"),
        (["--repeats", "0"], "--repeats"),
        (["--style", "fancy"], "--style"),
        (["--style", "plain"], "--style needs --launch"),
        (["--launch", "--style", "typed", "--same-app", "flask"], "not with --same-app"),
        (["--launch", "--style", "plain", "--scenarios", "hello,db"], "not db"),
        (["--queries-n", "0"], "--queries-n"),
        (["--updates-n", "501"], "--updates-n"),
        (["--scenarios", "db", "--pool-size", "4"], "--pool-size needs --launch"),
        (["--launch", "--scenarios", "db", "--pool-size", "0"], "--pool-size"),
        (["--launch", "--scenarios", "db", "--pool-size", "101"], "--pool-size must be 1-100"),
        (["--launch", "--scenarios", "db", "--pool-size", "2,2"], "--pool-size"),
        (["--launch", "--pool-size", "4"], "would run once per size for nothing"),
        (["--launch", "--scenarios", "db,json", "--pool-size", "2,4"], "json would run once"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(argv)
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_defaults_make_a_plan_that_pins_where_it_can():
    plan = cli.parse([])
    assert plan.pin is None  # decided by the cores there are
    assert (plan.connections, plan.workers, plan.rates) == ([32], [1], None)
    assert plan.fractions == [0.1, 0.25, 0.5, 0.75]
    # The database scenarios need a database: they are asked for by name.
    assert plan.scenarios == list(cli.DEFAULT_SCENARIOS)
    assert not set(cli.DEFAULT_SCENARIOS) & set(DATABASE_SCENARIOS)
    assert not plan.uses_database and plan.pool_sizes is None
    assert (plan.tool, plan.arrivals, plan.repeats) == ("wrk", "poisson", cli.DEFAULT_REPEATS)
    assert plan.same_app is None and plan.seed is None
    assert plan.names == {"flask": "Flask", "fastapi": "FastAPI"}
    assert plan.path("io") == "/io?ms=10" and plan.path("cpu") == "/cpu?n=10000"
    assert plan.path("queries") == "/queries?n=20" and plan.path("updates") == "/updates?n=5"
    assert plan.path("db") == "/db" and plan.path("fortunes") == "/fortunes"


def test_the_database_scenarios_and_a_pool_size_sweep_make_a_plan():
    plan = cli.parse(
        ["--launch", "--scenarios", "db,queries,fortunes,updates", "--pool-size", "2,4,8"]
    )
    assert plan.uses_database and plan.pool_sizes == [2, 4, 8]
    assert plan.scenarios == list(DATABASE_SCENARIOS) == list(SCENARIOS[4:])
    plan = cli.parse(["--scenarios", "queries", "--queries-n", "500", "--updates-n", "1"])
    assert plan.path("queries") == "/queries?n=500" and plan.path("updates") == "/updates?n=1"


def test_sweeps_rates_and_an_a_a_comparison_make_their_plan():
    plan = cli.parse(
        ["--launch", "--workers", "1,2,4", "--connections", "16,32", "--rate", "200,500.5"]
    )
    assert (plan.workers, plan.connections, plan.rates) == ([1, 2, 4], [16, 32], [200, 500.5])
    assert plan.fractions == []  # the rates given replace them
    assert cli.parse(["--no-pin"]).pin is False and cli.parse(["--pin"]).pin is True
    same = cli.parse(["--same-app", "fastapi", "--seed", "42", "--arrivals", "uniform"])
    assert same.names == {"flask": "FastAPI A", "fastapi": "FastAPI B"}
    assert (same.seed, same.arrivals) == (42, "uniform")


def test_help_goes_to_stdout_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--rate" in out and "--no-pin" in out and "--workers" in out


def test_help_shows_each_default_once_as_it_is_typed_and_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        cli.parse(["--help"])
    out = capsys.readouterr().out
    options, _, exits = out.partition("exit codes:")
    for option in options.split("\n  -")[1:]:
        assert option.count("(default:") <= 1, option
    assert f"(default: {','.join(cli.DEFAULT_SCENARIOS)})" in " ".join(options.split())  # wrapped
    assert f"(default: {cli.DEFAULT_FRACTIONS})" in options
    assert "(default: 1)" in options and "(default: 32)" in options
    for python_only in ("None", "True", "False", "['", "[1]", "[32]"):
        assert python_only not in options
    exits = " ".join(exits.split())  # wrapped to the terminal
    for code, meaning in EXIT_CODES.items():
        assert f"{code} {meaning}" in exits


def test_the_style_says_which_apps_and_each_ones_response_style():
    assert cli.parse([]).styles == {"flask": "typed", "fastapi": "typed"}  # the project's
    plan = cli.parse(["--launch", "--style", "plain", "--scenarios", "hello,json,io,cpu"])
    assert (plan.style, plan.styles) == ("plain", {"flask": "plain", "fastapi": "plain"})
