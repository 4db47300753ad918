"""Screen-sharing benchmark: the whole pipeline on loopback, next to x11vnc.

Starts its own Xvfb (1920x1080x24), the content window
(``tests/x11_content.py``: photo wallpaper, editor, clock, video area), a relay
process, a user process (ScreenSharer) and a viewer process (ScreenReceiver
and the Qt ScreenPanel, offscreen, 1:1), all on 127.0.0.1, and prints one JSON
document. The user process is pinned to core 0, everything else to core 1
(performance.md section 4, layout B).

Scenes and modes:

- ``synthetic`` (typing, scrolling, video): every frame is a real full-screen
  MIT-SHM grab into a reused buffer, then the scene's change is injected into
  it and reported as damage, the way X DAMAGE reports a real change
  (performance.md's method: the rate is the pipeline's, not the content
  app's). typing: one more glyph of a 320x16 line of real editor text per
  frame; scrolling: the whole screen moves up 4 px per frame; video: a
  1280x720 area shows the next frame of a moving colour field plus noise.
  No frame-rate cap.
- ``real`` (all four): X DAMAGE and the content app changing 30 times a
  second (static: only the clock ticks, once a second). Default frame cap (60).
- ``fastest`` (typing): X DAMAGE, the content app typing as fast as Qt can
  draw, no frame cap: the real path's own rate, grabbing only what changed.
- ``x11vnc`` (all four, when x11vnc is installed): the same real content
  through x11vnc (defaults: -wait 20 -defer 20, ncache off) read by a minimal
  RFB 3.8 client (Tight, ZRLE, CopyRect, Raw; JPEG quality 6, compression 6)
  that asks for the next incremental update as soon as one arrives.

Per scene and mode: delivered frames per second F (frames on the viewer's
canvas), G (full-screen grab + copy into a preallocated buffer, same process
and core, measured just before), latency from capture to painted (p50, p95;
one CLOCK_MONOTONIC across processes), bytes per frame (the encoded
ScreenFrame message with its rectangle headers; the record layer then adds
about 31 bytes of encryption per 64 KiB fragment) and Mbit/s,
the user process's CPU (% of one core, from /proc), and per-stage medians:
grab, diff, encode, send (user), network (sent to arrived: encryption, relay,
decryption), decode (arrived to on the canvas) and paint (on the canvas to
painted). ``stage_sum_ms`` is the user side's per-frame grab+diff+encode+send
(median and mean) and ``F_over_stage_bound`` is F / (1000 / mean stage sum):
the share of what the user side's stages allow that is delivered.

Usage: python -m bench.screen [--seconds 6] [--scenes typing,video] [--no-vnc]

Every process started is ended by its pid at the end, also on errors.

The parts: ``common`` (constants, small helpers, the child processes and the
Xvfb), ``scenes`` (the synthetic scenes' injected changes), ``user`` and
``viewer`` (the two sides' processes), ``vnc`` (x11vnc through a minimal RFB
client), ``report`` (the numbers and the targets), ``orchestrate`` (the run),
``__main__`` (the command line).
"""
