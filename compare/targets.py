"""The two apps compared: found, checked to be these apps, and read through /status."""

from __future__ import annotations

from typing import Any

import httpx2
from pydantic import ValidationError

import workloads
from metrics.schema import Snapshot

APPS = ("flask", "fastapi")  # the two ports' apps, as the report's pairs have them


class TargetError(RuntimeError):
    """A target is unreachable, not one of these apps, or the same app as the other."""


def identify(client: httpx2.Client, app: str, url: str) -> dict[str, Any]:
    """The greeting of the app at url, with its server, after checking it is one of these apps."""
    try:
        hello = client.get(url + "/")
        status = client.get(url + "/status")
    except httpx2.HTTPError as error:
        raise TargetError(f"the {app} target {url} is unreachable: {error}") from None
    try:
        greeting = workloads.Greeting.model_validate(hello.json())
        Snapshot.model_validate(status.json())
    except (ValueError, ValidationError):
        raise TargetError(
            f"{url} is not an app of flask-vs-fastapi (GET / answered {hello.status_code}:"
            f" {hello.text[:120]!r})"
        ) from None
    return {**greeting.model_dump(), "server": hello.headers.get("server", "unknown")}


def check_targets(
    client: httpx2.Client,
    urls: dict[str, str],
    same_app: str | None = None,
    database: bool = False,
) -> dict[str, dict[str, Any]]:
    """Both greetings, once each URL is known to serve the app it is given for: its own, or
    with same_app (an A/A comparison) that app on both, as two instances (and, with
    `database`, to answer /db from its database)."""
    greetings = {app: identify(client, app, url) for app, url in urls.items()}
    frameworks = {app: greeting["framework"] for app, greeting in greetings.items()}
    if same_app:
        other = [
            f"{urls[app]} serves {frameworks[app]}" for app in APPS if frameworks[app] != same_app
        ]
        if other:
            raise TargetError(f"--same-app {same_app}: {' and '.join(other)}")
        if greetings["flask"]["pid"] == greetings["fastapi"]["pid"]:
            raise TargetError(
                f"--same-app {same_app} needs two instances: {urls['flask']} and"
                f" {urls['fastapi']} are one (both answered from pid {greetings['flask']['pid']})"
            )
    elif frameworks["flask"] == frameworks["fastapi"]:
        raise TargetError(
            f"both URLs point at the same app: {urls['flask']} and {urls['fastapi']}"
            f" both serve {frameworks['flask']} (--same-app {frameworks['flask']} compares"
            " two instances of one app)"
        )
    elif frameworks["flask"] != "flask":
        raise TargetError(
            f"{urls['flask']} is the {frameworks['flask']} app and {urls['fastapi']} the"
            f" {frameworks['fastapi']} app: swap --flask and --fastapi"
        )
    if database:
        for url in urls.values():
            check_database(client, url)
    return greetings


def check_database(client: httpx2.Client, url: str) -> None:
    """Refuse, in the app's own words, an app whose /db does not answer from a database."""
    try:
        answer = client.get(url + "/db")
    except httpx2.HTTPError as error:
        raise TargetError(f"{url}/db failed: {error}") from None
    if answer.status_code != 200:
        try:
            detail = answer.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = answer.text[:200]
        raise TargetError(
            f"{url}/db answered {answer.status_code} ({detail}): the database scenarios need"
            " the apps' database"
        )


def status(client: httpx2.Client, url: str) -> Snapshot:
    try:
        return Snapshot.model_validate(client.get(url + "/status").json())
    except (httpx2.HTTPError, ValueError, ValidationError) as error:
        raise TargetError(f"{url}/status failed during the comparison: {error}") from None
