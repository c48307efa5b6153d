"""The baselines answer the scenarios' requests with the same bytes as the project's app
of their framework: status, content-type and body."""

import importlib
import sys

import pytest
from fastapi.testclient import TestClient

# The scenarios' requests: compare's defaults, and what benchmarks/instructions.py sends.
TARGETS = ["/", "/json", "/io?ms=0", "/io?ms=10", "/cpu?n=10000", "/cpu?n=2"]
BASELINES = {
    "flask": ["baselines.flask-plain", "baselines.flask-typed"],
    "fastapi": ["baselines.fastapi-plain", "baselines.fastapi-typed"],
}


def answer(app, target: str) -> tuple[int, str, bytes]:
    """(status, content-type, body) of `GET target` through the app's own test client."""
    if hasattr(app, "test_client"):
        response = app.test_client().get(target)
        return response.status_code, response.headers["content-type"], response.data
    response = TestClient(app).get(target)
    return response.status_code, response.headers["content-type"], response.content


@pytest.fixture(scope="module")
def project_apps(flask_module, fastapi_module):
    return {"flask": flask_module.app, "fastapi": fastapi_module.app}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    ("framework", "baseline"),
    [(framework, name) for framework, names in BASELINES.items() for name in names],
)
def test_a_baseline_answers_a_scenario_with_the_project_apps_bytes(
    project_apps, framework, baseline, target
):
    expected = answer(project_apps[framework], target)
    assert expected[:2] == (200, "application/json")
    assert answer(importlib.import_module(baseline).app, target) == expected


@pytest.mark.parametrize("baseline", ["baselines.flask-plain", "baselines.fastapi-plain"])
def test_a_plain_baseline_builds_no_model(baseline, monkeypatch):
    # Were a plain baseline to build its answers with pydantic, it would measure the
    # typed style twice: every model's constructor fails here.
    import workloads

    app = importlib.import_module(baseline).app
    for model in (workloads.Greeting, workloads.ItemList, workloads.Waited, workloads.Primes):
        monkeypatch.setattr(model, "__init__", refuse)
    assert [answer(app, target)[0] for target in TARGETS] == [200] * len(TARGETS)


def refuse(*args, **kwargs):
    raise AssertionError("a plain baseline built a model")


@pytest.mark.parametrize("name", ["flask_plain", "flask_typed", "fastapi_plain", "fastapi_typed"])
def test_an_observed_baseline_adds_status_and_stats_and_keeps_its_answers(
    name, project_apps, monkeypatch
):
    from metrics.schema import Snapshot, Stats

    # Fresh modules, as a worker imports them: routes are added before any request.
    for module in [m for m in sys.modules if m.startswith("baselines.")]:
        monkeypatch.delitem(sys.modules, module)
    app = importlib.import_module(f"baselines.observed.{name}").app
    framework = name.split("_")[0]
    for target in TARGETS:
        assert answer(app, target) == answer(project_apps[framework], target)
    status, content_type, body = answer(app, "/status")
    assert (status, content_type) == (200, "application/json")
    assert Snapshot.model_validate_json(body).process.rss_mb > 0
    status, _, body = answer(app, "/stats?last=1")
    assert status == 200 and Stats.model_validate_json(body)
