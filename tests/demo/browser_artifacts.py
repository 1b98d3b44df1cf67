"""Screenshots of the browser tests, kept in test-artifacts/ (a module of its own: test folders each
have a `conftest`, so importing helpers from one by name would pick up the wrong one)."""

from __future__ import annotations

from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
