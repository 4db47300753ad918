"""The technician's side of screen sharing: decode untrusted frames, keep a canvas.

:class:`~technician.core.screen.receiver.ScreenReceiver` is the entry point;
:mod:`technician.core.screen.decoder` holds every check on what the user's
side sends.
"""
