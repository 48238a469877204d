from __future__ import annotations

from pathlib import Path

import pytest

from integrations.knowledge import KnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
KB_DIR = ROOT / "config" / "knowledge"


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    """The shipped knowledge base, loaded once (a second or two)."""
    return KnowledgeBase.load(KB_DIR)
