"""Serving both apps: the package behind up.sh, start.sh's checks and the tests' launches.

    config.py           the one configuration: conf.json and the environment, read and checked once
    settings.py         every environment variable, its default and meaning, read to a plain value
    apps.py             the app on each port (APPS), WSGI or ASGI, and its framework
    conf.py             conf.json read and checked: Unit's rules and fairness
    database_config.py  which database, PostgreSQL's programs and user, the pool size
    exits.py            up.sh's exit codes and what each means
    ports.py            a free port, and whether a server could listen on one
    readiness.py        whether both apps serve (/ and /status): up.sh, start.sh, HEALTHCHECK
    supervise.py        servers in process groups, signals, the drain, the readiness wait
    granian.py          granian's command line, one granian per app
    unit.py             NGINX Unit: its Python checked, its configuration, control API and drain
    postgres.py         PostgreSQL beside the apps: its cluster, the data, its stop
    launch.py           both apps under ./up.sh on free loopback ports, in the background
    __main__.py         up.sh's program: python -m serve

Nothing here is imported on `import serve`: start.sh and the images' HEALTHCHECK run
config (and the settings, apps, conf and database_config it reads), ports and readiness with
a bare python3, which has the standard library only.
"""
