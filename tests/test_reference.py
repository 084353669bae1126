"""The generated protocol reference in docs/ matches the settings models (regenerate, never hand-edit)."""

from __future__ import annotations

from pathlib import Path

from aeqprop.reference import protocol_reference

PAGE = Path(__file__).resolve().parents[1] / "docs" / "protocol-reference.md"


def test_protocol_reference_is_current() -> None:
    assert PAGE.is_file(), (
        "docs/protocol-reference.md is missing: python -m aeqprop.reference > docs/protocol-reference.md"
    )
    assert PAGE.read_text() == protocol_reference(), (
        "docs/protocol-reference.md is stale: run python -m aeqprop.reference > docs/protocol-reference.md"
    )


def test_every_registered_kind_has_a_section() -> None:
    from aeqprop import registry

    text = protocol_reference()
    for kind in registry.names(registry.SYSTEMS):
        assert f'[system] kind = "{kind}"' in text
    for kind in registry.names(registry.RULES):
        assert f'[algorithm] kind = "{kind}"' in text
