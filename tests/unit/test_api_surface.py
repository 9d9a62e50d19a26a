"""The public surface: the README's API table names exactly `wb.__all__`, every public callable
has a docstring with an example, and the namespaces are modules whose helpers bind to a session."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import workbench as wb

README = Path(__file__).resolve().parents[2] / "README.md"
NAMESPACES = [
    "claims",
    "traces",
    "scores",
    "prompts",
    "faults",
    "deployments",
    "experiments",
    "serving",
]


def _api_table() -> list[str]:
    text = README.read_text()
    section = text.split("## API at a glance", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `wb\.([A-Za-z_]+)` \|", section, re.MULTILINE)


def test_the_readme_table_names_exactly_all() -> None:
    listed = _api_table()
    assert len(listed) == len(set(listed)), "a name is listed twice"
    assert sorted(listed) == sorted(wb.__all__)


def test_every_name_in_all_exists() -> None:
    missing = [name for name in wb.__all__ if not hasattr(wb, name)]
    assert missing == []


def _public_methods(namespace: str) -> list[tuple[str, object]]:
    cls = type(getattr(wb.session.Session, namespace).func(None))  # the namespace's class
    return [
        (name, member)
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member) and not inspect.isclass(member)
    ]


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_namespace_helper_documents_itself_with_an_example(namespace: str) -> None:
    undocumented = [
        name
        for name, member in _public_methods(namespace)
        if "Example:" not in (inspect.getdoc(member) or "")
    ]
    assert undocumented == [], f"wb.{namespace}: {undocumented} lack a docstring with an example"


@pytest.mark.parametrize("cls", [wb.Experiment], ids=["Experiment"])
def test_handles_document_their_methods_with_an_example(cls: type) -> None:
    undocumented = [
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_")
        and callable(member)
        and "Example:" not in (inspect.getdoc(member) or "")
    ]
    assert undocumented == [], f"{cls.__name__}: {undocumented} lack a docstring with an example"


@pytest.mark.parametrize(
    "name", ["start", "stop", "submit_claim", "claim", "ledger", "timeline", "serve"]
)
def test_shortcuts_document_themselves_with_an_example(name: str) -> None:
    assert "Example:" in (inspect.getdoc(getattr(wb, name)) or "")


def test_start_shows_every_parameter() -> None:
    parameters = inspect.signature(wb.start).parameters
    for name in (
        "home",
        "tracing",
        "model_url",
        "langfuse_url",
        "restate_ingress_url",
        "restate_admin_url",
        "ingress_port",
        "admin_port",
        "llm_port",
        "langfuse_port",
        "services_port",
    ):
        assert name in parameters
        assert name in (inspect.getdoc(wb.start) or "")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_namespaces_are_the_modules_and_complete_their_helpers(namespace: str) -> None:
    module = getattr(wb, namespace)
    assert inspect.ismodule(module), "a function or object must not hide the module"
    names = dir(module)
    for name, member in _public_methods(namespace):
        assert name in names
        assert inspect.getdoc(getattr(module, name)) == inspect.getdoc(member)
    with pytest.raises(AttributeError, match=f"module 'workbench.{namespace}' has no attribute"):
        _ = module.no_such_helper


def test_every_error_is_a_workbench_error() -> None:
    errors = [getattr(wb, n) for n in wb.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, wb.WorkbenchError) for e in errors)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_a_namespace_repr_names_its_helpers(namespace: str) -> None:
    helpers = getattr(wb.Session, namespace).func(None)
    shown = repr(helpers)
    assert shown.startswith(f"<wb.{namespace}: "), shown
    listed = shown.split(": ", 1)[1].rstrip(">").split(", ")
    methods = [n for n in dir(type(helpers)) if not n.startswith("_") and n != "label"]
    assert sorted(listed) == sorted(m for m in methods if m != "session")
