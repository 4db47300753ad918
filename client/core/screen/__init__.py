"""The user's side of screen sharing: capture, change detection, encoding, pacing.

:class:`~client.core.screen.sharer.ScreenSharer` is the entry point. The
decisions (which tiles changed, which codec, when to send, how good) live in
pure modules (:mod:`.policy`, :mod:`.pacing`, :mod:`.scheduler`) that take
the time as an argument; :mod:`.capture`, :mod:`.damage` and :mod:`.cursor` talk to the X
server.
"""
