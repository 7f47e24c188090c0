"""The reference pages are generated from the models: complete by construction, and never stale."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter

from flare_assets.spec import reference
from flare_assets.spec.functions import REGISTRY, Function
from flare_assets.spec.functions.examples import EXAMPLES

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reference"


def test_committed_reference_pages_match_the_models() -> None:
    for name, text in reference.pages().items():
        assert (DOCS / name).read_text() == text, f"docs/reference/{name} is stale: run `flare docs`"


def test_every_function_has_a_description_and_a_valid_example() -> None:
    assert sorted(EXAMPLES) == sorted(REGISTRY)
    TypeAdapter(list[Function]).validate_python([{"name": n, **args} for n, args in EXAMPLES.items()])
    assert [n for n, m in REGISTRY.items() if not (m.__doc__ or "").strip()] == []
    page = reference.functions_page()
    assert all(f"### `{name}`" in page for name in REGISTRY)


def test_every_manifest_key_is_in_the_reference() -> None:
    from flare_assets.spec.model import METADATA_ONLY

    page = reference.manifest_page()
    for path in ("`workflow.dag[].spec.stackSpec.job.outputs[].options.saveMode`", "`workspace`"):
        assert path in page
    assert page.count("metadata only:") == len(METADATA_ONLY)


def test_every_manifest_key_says_what_it_does() -> None:
    from flare_assets.spec.model import Manifest

    rows = reference.rows(Manifest, "")
    applied = [r for r in rows if r[3] == "applied"]
    assert len(applied) > 150
    assert [r[0] for r in rows if not r[4].strip()] == [], "give these fields a Field(description=...)"


def test_every_function_argument_has_a_note() -> None:
    empty = [
        f"{name}.{field.alias or key}"
        for name, model in REGISTRY.items()
        for key, field in model.model_fields.items()
        if key != "name" and not (field.description or "").strip()
    ]
    assert empty == [], "give these arguments a Field(description=...)"


def test_cli_reference_matches_the_parser() -> None:
    from flare_assets.cli import cli_page

    assert (DOCS / "cli.md").read_text() == cli_page(), "docs/reference/cli.md is stale: run `flare docs`"
    assert "## `flare validate`" in cli_page() and "## `flare register`" in cli_page()
