"""The processes of the serving stack that ./up.sh started, each named by its part in it,
found the same way natively and under valgrind (where every process is named valgrind):

    granian: master (one per app), worker (its children)
    Unit:    main, controller, router (shared by both apps), prototype (one per app),
             worker (the prototype's children: Unit's application processes)
    either:  database (the PostgreSQL that up.sh started, and its backends)

An app's worker is the process that answers its port's GET / (its greeting's pid), and
its master or prototype that worker's parent; Unit's router is the process listening on
the apps' ports, and its controller the other child of main that is no prototype.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

import psutil

from serve.launch import Launch

SHARED_ROLES = ("main", "controller", "router")  # Unit's processes of both apps
APP_ROLES = ("master", "prototype", "worker")  # one app's own


class StackError(RuntimeError):
    """The stack is not laid out as its server lays it out."""


@dataclass(frozen=True)
class StackProcess:
    pid: int
    role: str  # one of SHARED_ROLES, APP_ROLES, "database" or "other"
    app: str | None  # flask or fastapi (the port's app) for an app's own; else None


def greeting_pid(port: int) -> int:
    """The pid in the greeting (GET /) of the app on `port`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", "/")
        return int(json.loads(connection.getresponse().read())["pid"])
    except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
        raise StackError(f"GET / on port {port} gave no pid: {error}") from None
    finally:
        connection.close()


def listens_on(process: psutil.Process, ports: set[int]) -> bool:
    try:
        connections = process.net_connections("inet")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port in ports for c in connections)


def stack_processes(launch: Launch) -> list[StackProcess]:
    """Every process below up.sh, with its part."""
    try:
        supervisor = psutil.Process(launch.process.pid)
        parents: dict[str, psutil.Process] = {}
        for app, port in launch.ports.items():
            parents[app] = psutil.Process(greeting_pid(port)).parent()
        parent_pids = {parent.pid for parent in parents.values()}
        found = []
        for app, parent in parents.items():
            role = "master" if parent.ppid() == supervisor.pid else "prototype"
            found.append(StackProcess(parent.pid, role, app))
            found += [StackProcess(child.pid, "worker", app) for child in parent.children()]
        for child in supervisor.children():
            if child.pid in parent_pids:
                continue  # a granian master, found above
            below = child.children(recursive=True)
            if child.name() == "postgres":
                found += [StackProcess(p.pid, "database", None) for p in [child, *below]]
            elif any(parent.ppid() == child.pid for parent in parents.values()):
                found += unit_shared(child, set(launch.ports.values()), parent_pids)
            else:
                found += [StackProcess(p.pid, "other", None) for p in [child, *below]]
    except psutil.Error as error:
        raise StackError(f"the stack changed while it was looked at: {error}") from None
    return found


def unit_shared(main: psutil.Process, ports: set[int], prototypes: set[int]) -> list[StackProcess]:
    """Unit's main, router and controller (its children that are no prototype)."""
    found = [StackProcess(main.pid, "main", None)]
    for child in main.children():
        if child.pid in prototypes:
            continue
        role = "router" if listens_on(child, ports) else "controller"
        found.append(StackProcess(child.pid, role, None))
    return found
