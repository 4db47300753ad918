"""The system summary is read from this machine and shown exactly as it is sent."""

from __future__ import annotations

from pathlib import Path

from client.core.system_summary import collect_summary


def test_collects_every_field(tmp_path: Path) -> None:
    summary = collect_summary(home=tmp_path, cpu_model=lambda: "Test CPU")
    assert summary.cpu.startswith("Test CPU, ") and "cores" in summary.cpu
    assert "GiB" in summary.memory and "available" in summary.memory
    assert "free" in summary.disk
    assert summary.os and summary.network
    text = summary.as_text()
    assert text.splitlines()[0].startswith("Operating system: ")
    assert len(text.splitlines()) == 5


def test_no_paths_in_the_summary(tmp_path: Path) -> None:
    text = collect_summary(home=tmp_path).as_text()
    assert str(tmp_path) not in text and str(Path.home()) not in text
