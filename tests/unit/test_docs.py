"""The documentation keeps up with the code: every option is in the README's table."""

from __future__ import annotations

from pathlib import Path

from cosfs.command.options import option_fields

REPOSITORY = Path(__file__).resolve().parents[2]


def test_readme_option_table_lists_every_option():
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    missing = [item.name for item in option_fields() if f"`{item.name}`" not in readme]
    assert missing == []


def test_readme_links_point_at_files_that_exist():
    readme = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    for link in ("docs/SEMANTICS.md", "docs/ARCHITECTURE.md", "docs/PROTOCOLS.md", "docs/PERFORMANCE.md",
                 "systemd/README.md"):
        assert f"]({link})" in readme, link
        assert (REPOSITORY / link).is_file(), link
