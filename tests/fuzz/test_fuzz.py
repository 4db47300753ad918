"""A short coverage-guided fuzz pass over every network-reachable parser (issue 14).

Each target of :mod:`tests.fuzz.targets` runs in its own process (libFuzzer
owns the process it runs in) for ``DESKHAND_FUZZ_SECONDS`` seconds (15 by
default, about a minute and a half for all six), starting from the committed seeds in
``tests/fuzz/seeds/TARGET``; new inputs go to a temporary folder, never to
the seeds. A crash, a wrong exception, a broken property, a hang or too
much memory fails the test with the fuzzer's report and the input that did
it. docs/security-tests.md says how to run a long pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS


pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
SEEDS = Path(__file__).parent / "seeds"
SECONDS = int(os.environ.get("DESKHAND_FUZZ_SECONDS", "15"))


def test_every_target_has_seeds() -> None:
    for name in TARGETS:
        assert any((SEEDS / name).iterdir()), name


@pytest.mark.timeout(SECONDS + 180)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target(target: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    command = [
        sys.executable,
        "-m",
        "tests.fuzz.targets",
        target,
        f"-max_total_time={SECONDS}",
        "-timeout=10",  # one input may take at most this (seconds): a hang is a bug
        "-rss_limit_mb=1536",  # the decoders' limits keep memory far below this
        "-max_len=8192",
        f"-artifact_prefix={tmp_path}/",
        "-print_final_stats=1",
        str(corpus),
        str(SEEDS / target),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=SECONDS + 150,
        check=False,
    )
    report = result.stderr[-6000:]
    found = ("crash-", "leak-", "oom-", "timeout-")
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(found)]
    assert result.returncode == 0 and not crashes, f"{target}: {crashes}\n{report}"
    assert "Done" in result.stderr, report
