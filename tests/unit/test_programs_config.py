"""Programs added to or removed from a running stack change exactly one section of the
generated supervisord config."""

from __future__ import annotations

import pytest

from workbench.deployments import check_version
from workbench.stack.programs import with_section

CONFIG = """[supervisord]
logfile=/h/logs/supervisord.log

[program:services]
command=python -m services --port 9080
environment=SERVICE_VERSION="v1"

[program:restate]
command=restate-server
"""


def test_a_section_is_added_at_the_end() -> None:
    text = with_section(CONFIG, "services-v2", ["[program:services-v2]", "command=x", ""])
    assert text.startswith(CONFIG.rstrip("\n"))
    assert text.endswith("[program:services-v2]\ncommand=x\n\n")


def test_a_section_is_replaced_in_place_of_the_old_one_and_the_others_kept() -> None:
    text = with_section(CONFIG, "services", ["[program:services]", "command=new", ""])
    assert text.count("[program:services]") == 1
    assert "SERVICE_VERSION" not in text and "command=new" in text
    assert "[program:restate]\ncommand=restate-server" in text
    assert "[supervisord]" in text


def test_a_section_is_removed() -> None:
    text = with_section(CONFIG, "services", None)
    assert "[program:services]" not in text and "9080" not in text
    assert "[program:restate]" in text


@pytest.mark.parametrize("bad", ["", "v 2", "-v2", "v2;rm", "x" * 33], ids=repr)
def test_a_version_name_is_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a version name"):
        check_version(bad)
