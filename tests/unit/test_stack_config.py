"""Configuration by environment or .env: the real Langfuse, the real model, by settings alone."""

from __future__ import annotations

import pytest

from workbench.stack.config import StackConfig


@pytest.fixture
def project(tmp_path, monkeypatch):
    for key in ("LANGFUSE_BASE_URL", "LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def test_dotenv_points_the_stack_at_a_real_langfuse(project) -> None:
    (project / ".env").write_text(
        "# Langfuse Cloud\nLANGFUSE_BASE_URL=https://cloud.langfuse.com\n"
        "LANGFUSE_PUBLIC_KEY=pk-lf-1\nLANGFUSE_SECRET_KEY='sk-lf-2'\n"
    )
    config = StackConfig.resolve(project / "home", project=project)
    assert not config.embedded_langfuse
    assert config.langfuse_base_url == "https://cloud.langfuse.com"
    assert (config.langfuse_public_key, config.langfuse_secret_key) == ("pk-lf-1", "sk-lf-2")


def test_the_environment_wins_over_dotenv(project, monkeypatch) -> None:
    (project / ".env").write_text("LANGFUSE_BASE_URL=https://cloud.langfuse.com\n")
    monkeypatch.setenv("LANGFUSE_BASE_URL", "http://self-hosted:3000")
    monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk")
    monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk")
    config = StackConfig.resolve(project / "home", project=project)
    assert config.langfuse_base_url == "http://self-hosted:3000"


def test_a_real_langfuse_without_keys_is_a_clear_error(project, monkeypatch) -> None:
    monkeypatch.setenv("LANGFUSE_BASE_URL", "https://cloud.langfuse.com")
    with pytest.raises(ValueError, match="LANGFUSE_PUBLIC_KEY/LANGFUSE_SECRET_KEY are not"):
        StackConfig.resolve(project / "home", project=project)


def test_embedded_by_default_and_no_langfuse_when_tracing_is_off(project) -> None:
    assert StackConfig.resolve(project / "home", project=project).embedded_langfuse
    config = StackConfig.resolve(project / "home", project=project, tracing=False)
    assert not config.embedded_langfuse


def test_services_workers_by_option_or_environment(project, monkeypatch) -> None:
    monkeypatch.delenv("WORKBENCH_SERVICES_WORKERS", raising=False)
    assert StackConfig.resolve(project / "home", project=project).services_workers == 1
    monkeypatch.setenv("WORKBENCH_SERVICES_WORKERS", "3")
    assert StackConfig.resolve(project / "home", project=project).services_workers == 3
    config = StackConfig.resolve(project / "home", project=project, services_workers=2)
    assert config.services_workers == 2
    for bad in ("0", "two"):
        monkeypatch.setenv("WORKBENCH_SERVICES_WORKERS", bad)
        with pytest.raises(ValueError, match=rf"1 or more, got '{bad}'"):
            StackConfig.resolve(project / "home", project=project)
