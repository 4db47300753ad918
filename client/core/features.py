"""The features a user-side session controller starts and stops (screen, clipboard).

Each is a small object owned by :class:`~client.core.session_controller.UserSessionController`.
None keeps a copy of a grant: each asks the capability authority. Remote
control is :class:`~client.core.control.service.ControlService`; chat is
small enough to live in the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from client.core.authority import CapabilityAuthority
from common.capability import Capability
from common.clipboard import CallbackClipboard, ClipboardPort, ClipboardSync, ClipboardTransfer
from common.errors import DeskhandError
from common.net.channel import SecureChannel
from common.protocol.channels import Channel
from common.protocol.messages import (
    AppMessage,
    ClipboardPolicy,
    ClipboardText,
    FrameAck,
    KeyframeRequest,
    ScreenStopped,
    ScreenStopReason,
    SelectMonitor,
)
from common.session import SecureSession


__all__ = [
    "ClipboardFeature",
    "ScreenFeature",
    "ScreenPort",
    "SharerFactory",
    "SharerPort",
]

logger = logging.getLogger(__name__)

ScreenMessage = FrameAck | KeyframeRequest | SelectMonitor


class SharerPort(Protocol):
    """What the screen feature needs from a screen sharer (ScreenSharer, or a fake)."""

    async def start(self) -> None: ...
    async def stop(self, reason: str = ...) -> None: ...
    def receive(self, msg: ScreenMessage) -> None: ...
    def session_ended(self) -> None: ...
    def request_keyframe(self) -> None: ...


class ScreenPort:
    """The channel as a sharer sees it: sends pass only while its period of sharing lasts.

    A sharer may be mid-frame when view is revoked; whatever it sends after
    that is dropped here, so nothing captured before the revocation reaches
    the technician after it.
    """

    def __init__(self, channel: SecureChannel, is_open: Callable[[], bool]) -> None:
        self._channel = channel
        self._is_open = is_open

    @property
    def session(self) -> SecureSession:
        return self._channel.session

    def send_nowait(self, msg: AppMessage) -> None:
        if isinstance(msg, ScreenStopped):
            return  # the feature says why sharing stopped, once
        if self._is_open():
            self._channel.send_nowait(msg)

    async def send(self, msg: AppMessage) -> None:
        await self._channel.wait_writable(msg.CHANNEL)
        self.send_nowait(msg)  # checks again: view may have ended while waiting


SharerFactory = Callable[[ScreenPort], SharerPort]


class ScreenFeature:
    """Screen sharing: runs exactly while the authority allows "view".

    Starting and stopping a sharer take time (the display, a worker thread),
    so they run in one task at a time; the decision to stop and the purge of
    unsent frames happen at once, in :meth:`sync`.
    """

    def __init__(
        self,
        channel: SecureChannel,
        authority: CapabilityAuthority,
        factory: SharerFactory,
        *,
        on_failed: Callable[[str], None],
    ) -> None:
        self._channel = channel
        self._authority = authority
        self._factory = factory
        self._on_failed = on_failed
        self._sharer: SharerPort | None = None
        self._stopping: list[SharerPort] = []  # halted, still holding the display
        self._period = 0  # one per period of sharing; a port is open only in its own
        self._failed = False
        self._task: asyncio.Task[None] | None = None
        self._again = False

    @property
    def sharing(self) -> bool:
        return self._sharer is not None

    def receive(self, msg: ScreenMessage) -> None:
        if self._sharer is not None:
            self._sharer.receive(msg)

    def link_restored(self) -> None:
        """The link is back: screen data in flight was dropped, so send a whole picture."""
        if self._sharer is not None:
            self._sharer.request_keyframe()

    def sync(self, reason: ScreenStopReason) -> None:
        """Follow the authority; ``reason`` says why, should sharing stop now."""
        want = self._authority.allows(Capability.VIEW)
        if not want:
            self._failed = False  # a new grant may try again
            if self._sharer is not None:
                self._halt(reason)
        self._schedule()

    def _halt(self, reason: ScreenStopReason) -> None:
        # Synchronous on purpose: close the port, drop what is queued, say so
        # ahead of any screen data (ScreenStopped travels on the control channel).
        self._period += 1
        session = self._channel.session
        session.discard_unsent(Channel.SCREEN)
        if session.is_open and reason is not ScreenStopReason.SESSION_ENDED:
            with contextlib.suppress(DeskhandError):
                self._channel.send_nowait(ScreenStopped(reason.value))
        sharer, self._sharer = self._sharer, None
        if sharer is not None:
            sharer.session_ended()
            self._stopping.append(sharer)
            self._schedule()

    def _schedule(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="deskhand-screen-feature"
        )

    async def _run(self) -> None:
        while True:
            self._again = False
            while self._stopping:
                sharer = self._stopping.pop(0)
                try:
                    await sharer.stop()
                except Exception:
                    logger.exception("stopping screen sharing failed")
            want = self._authority.allows(Capability.VIEW)
            if want and self._sharer is None and not self._failed:
                await self._start()
            if not self._again:
                return

    async def _start(self) -> None:
        period = self._period
        port = ScreenPort(self._channel, lambda: self._period == period)
        try:
            sharer = self._factory(port)
            self._sharer = sharer
            await sharer.start()
        except Exception as exc:
            self._sharer = None
            self._failed = True
            logger.warning("screen sharing could not start: %s", exc)
            self._on_failed(str(exc))
            if self._channel.session.is_open:
                with contextlib.suppress(DeskhandError):
                    self._channel.send_nowait(ScreenStopped(ScreenStopReason.FAILED.value))
            return
        if self._period != period or not self._authority.allows(Capability.VIEW):
            # View ended while the sharer was starting.
            self._sharer = None
            sharer.session_ended()
            self._stopping.append(sharer)
            self._again = True

    async def close(self) -> None:
        """The session is over: stop sharing and wait until the display is released."""
        if self._sharer is not None:
            self._halt(ScreenStopReason.SESSION_ENDED)
        task = self._task
        if task is not None:
            await asyncio.wait([task])


class ClipboardFeature:
    """Clipboard text both ways, while "clipboard" is allowed and the user's toggles say so."""

    def __init__(
        self,
        channel: SecureChannel,
        authority: CapabilityAuthority,
        *,
        write: Callable[[str], None],
        on_transfer: Callable[[ClipboardTransfer], None],
        port: ClipboardPort | None = None,
    ) -> None:
        self._channel = channel
        self._authority = authority
        self._on_transfer = on_transfer
        self.to_technician = True
        self.from_technician = True
        self._sync = ClipboardSync(
            port or CallbackClipboard(write),
            may_send=lambda: self._authority.allows(Capability.CLIPBOARD) and self.to_technician,
            may_receive=lambda: (
                self._authority.allows(Capability.CLIPBOARD) and self.from_technician
            ),
        )

    def sync(self) -> None:
        """Grants, pause or toggles changed: announce the policy again if it changed."""
        self._sync.refresh()
        self._flush()

    def set_directions(self, *, to_technician: bool, from_technician: bool) -> None:
        self.to_technician = to_technician
        self.from_technician = from_technician
        self.sync()

    def local_changed(self, text: str) -> None:
        self._sync.local_changed(text)
        self._flush()

    def receive(self, msg: ClipboardText | ClipboardPolicy) -> None:
        self._sync.receive(msg)
        self._flush()

    def _flush(self) -> None:
        for msg in self._sync.messages_to_send():
            if not self._channel.session.is_open:
                break
            with contextlib.suppress(DeskhandError):
                self._channel.send_nowait(msg)
        for transfer in self._sync.events_received():
            self._on_transfer(transfer)
