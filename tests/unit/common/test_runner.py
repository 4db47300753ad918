"""LoopThread: runs coroutines off the calling thread and stops cleanly."""

from __future__ import annotations

import asyncio
import threading

import pytest

from common.net.runner import LoopThread


def test_submit_runs_in_the_loop_thread() -> None:
    runner = LoopThread()
    runner.start()
    try:

        async def where() -> str:
            await asyncio.sleep(0)
            return threading.current_thread().name

        assert runner.submit(where()).result(5) == "deskhand-loop"
        done = threading.Event()
        runner.call_soon(done.set)
        assert done.wait(5)
    finally:
        runner.stop()


def test_stop_cancels_pending_work() -> None:
    runner = LoopThread()
    runner.start()
    future = runner.submit(asyncio.sleep(3600))
    runner.stop(timeout=5)
    assert future.cancelled() or isinstance(future.exception(1), asyncio.CancelledError)
    assert runner.loop.is_closed()


def test_errors_come_back_through_the_future() -> None:
    runner = LoopThread()
    runner.start()
    try:

        async def fail() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            runner.submit(fail()).result(5)
    finally:
        runner.stop()
