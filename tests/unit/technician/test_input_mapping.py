"""The technician's input: coordinate mapping, coalescing, keys, special sequences."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings, strategies as st

from common.protocol import messages as m
from common.protocol.messages import ControlState, ControlStatus
from technician.core.input import (
    SPECIAL_KEYS,
    InputQueue,
    Rect,
    RemoteInput,
    ViewTransform,
    describe_control_status,
    region_for,
    special_sequence,
    translate_key,
)


MONITORS = [(0, 0, 1920, 1080), (1920, 0, 2560, 1440)]
CONTROL_L, ALT_L, SHIFT_L, DELETE = 0xFFE3, 0xFFE9, 0xFFE1, 0xFFFF


# --- where ---


def test_region_for_one_monitor_or_all() -> None:
    assert region_for(MONITORS, 0) == Rect(0, 0, 4480, 1440)
    assert region_for(MONITORS, 2) == Rect(1920, 0, 2560, 1440)
    with pytest.raises(ValueError):
        region_for([])


def test_fit_to_window_scales_and_letterboxes() -> None:
    # 1920x1080 into 960x720: scale 0.5, 90 px bars above and below.
    t = ViewTransform.fit(Rect(0, 0, 1920, 1080), 960, 720)
    assert t.scale == 0.5 and (t.origin_x, t.origin_y) == (0, 90)
    assert t.to_remote(0, 90) == (0, 0)
    assert t.to_remote(959.9, 629.9) == (1919, 1079)
    assert t.to_remote(480, 360) == (960, 540)
    assert t.to_remote(10, 50) is None  # in the letterbox
    assert t.to_remote_clamped(10, 50) == (20, 0)
    assert t.to_remote_clamped(-500, 5000) == (0, 1079)


def test_fit_does_not_upscale_unless_asked() -> None:
    small = Rect(0, 0, 800, 600)
    assert ViewTransform.fit(small, 1600, 1200).scale == 1.0
    assert ViewTransform.fit(small, 1600, 1200, upscale=True).scale == 2.0


def test_one_to_one_with_scrolling() -> None:
    t = ViewTransform.one_to_one(Rect(0, 0, 1920, 1080), 800, 600, scroll_x=300, scroll_y=200)
    assert t.to_remote(0, 0) == (300, 200)
    assert t.to_remote(799, 599) == (1099, 799)
    # A picture narrower than the viewport is centred.
    t = ViewTransform.one_to_one(Rect(0, 0, 640, 480), 800, 600, scroll_x=99)
    assert t.to_remote(80, 60) == (0, 0)
    # HiDPI: one desktop pixel per device pixel is half a widget pixel at ratio 2.
    t = ViewTransform.one_to_one(Rect(0, 0, 1920, 1080), 400, 300, device_pixel_ratio=2.0)
    assert t.to_remote(100.25, 10.5) == (200, 21)


def test_second_monitor_maps_to_desktop_coordinates() -> None:
    t = ViewTransform.fit(region_for(MONITORS, 2), 1280, 720)
    assert t.to_remote(0, 0) == (1920, 0)
    assert t.to_remote(1279.9, 719.9) == (4479, 1439)


def test_points_between_monitors_go_to_the_nearest_one() -> None:
    monitors = [Rect(*mon) for mon in MONITORS]
    t = ViewTransform.fit(region_for(MONITORS), 4480, 1440, monitors=monitors)
    assert t.to_remote(100, 1200) == (100, 1079)  # below the shorter first monitor
    assert t.to_remote(2000, 1200) == (2000, 1200)


def test_invalid_transforms() -> None:
    with pytest.raises(ValueError):
        ViewTransform.fit(Rect(0, 0, 10, 10), 0, 10)
    with pytest.raises(ValueError):
        Rect(0, 0, 0, 10)
    t = ViewTransform.fit(Rect(0, 0, 10, 10), 10, 10)
    assert t.to_remote(float("nan"), 0) is None
    assert t.to_remote_clamped(float("inf"), 0) == (0, 0)


rects = st.builds(
    Rect,
    st.integers(-5000, 5000),
    st.integers(-5000, 5000),
    st.integers(1, 8000),
    st.integers(1, 5000),
)


@settings(max_examples=300)
@given(rects, st.integers(1, 4000), st.integers(1, 3000), st.booleans(), st.data())
def test_fit_maps_inside_the_region_and_round_trips(
    region: Rect, vw: int, vh: int, upscale: bool, data: st.DataObject
) -> None:
    t = ViewTransform.fit(region, vw, vh, upscale=upscale)
    vx = data.draw(st.floats(-100, vw + 100, allow_nan=False))
    vy = data.draw(st.floats(-100, vh + 100, allow_nan=False))
    point = t.to_remote(vx, vy)
    clamped = t.to_remote_clamped(vx, vy)
    assert region.contains(*clamped)
    if point is not None:
        assert region.contains(*point)
        assert point == clamped
    # The centre of any desktop pixel maps back to that pixel.
    x = data.draw(st.integers(region.x, region.x + region.width - 1))
    y = data.draw(st.integers(region.y, region.y + region.height - 1))
    assert t.to_remote(*t.to_viewer(x, y)) == (x, y)


@given(rects, st.floats(0, 10_000), st.floats(0, 10_000), st.integers(100, 3000))
def test_one_to_one_is_a_pure_translation(region: Rect, sx: float, sy: float, vw: int) -> None:
    assume(region.width > vw and region.height > vw)
    t = ViewTransform.one_to_one(region, vw, vw, scroll_x=sx, scroll_y=sy)
    a, b = t.to_remote(10, 10), t.to_remote(20, 30)
    if a is not None and b is not None:
        assert (b[0] - a[0], b[1] - a[1]) == (10, 20)
        assert a == (region.x + 10 + int(sx), region.y + 10 + int(sy))


# --- when ---


def test_moves_are_coalesced_but_order_is_kept() -> None:
    q = InputQueue(min_move_interval=0.01)
    q.push(m.PointerMove(1, 1), 0.0)
    assert q.take(0.0) == [m.PointerMove(1, 1)]  # the first move goes at once
    q.push(m.PointerMove(2, 2), 0.001)
    q.push(m.PointerMove(3, 3), 0.002)
    assert q.take(0.003) == []
    assert q.next_deadline() == pytest.approx(0.01)
    q.push(m.PointerButton(1, True), 0.004)  # the newest move goes first, then the button
    assert q.take(0.004) == [m.PointerMove(3, 3), m.PointerButton(1, True)]
    q.push(m.PointerMove(4, 4), 0.005)
    assert q.take(0.0139) == []
    assert q.take(0.0141) == [m.PointerMove(4, 4)]
    assert q.next_deadline() is None
    assert (q.pushed, q.coalesced) == (5, 1)
    with pytest.raises(ValueError):
        InputQueue(-1)


@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.builds(m.PointerMove, st.integers(0, 99), st.integers(0, 99)),
                st.builds(m.PointerButton, st.sampled_from([1, 3]), st.booleans()),
                st.builds(m.KeyEvent, st.integers(0x61, 0x7A), st.booleans()),
            ),
            st.floats(0, 0.02),
        ),
        max_size=80,
    )
)
def test_coalescing_preserves_everything_but_intermediate_moves(
    pushes: list[tuple[m.AppMessage, float]],
) -> None:
    q = InputQueue(min_move_interval=0.008)
    now, sent = 0.0, []
    for msg, dt in pushes:
        now += dt
        q.push(msg, now)
        sent += q.take(now)
    sent += q.take(now + 1)
    others = [msg for msg, _ in pushes if not isinstance(msg, m.PointerMove)]
    assert [msg for msg in sent if not isinstance(msg, m.PointerMove)] == others
    # Each button or key is preceded by the latest move pushed before it.
    last_move = None
    last_sent_move = None
    index = 0
    for msg, _ in pushes:
        if isinstance(msg, m.PointerMove):
            last_move = msg
            continue
        while sent[index] != msg or isinstance(sent[index], m.PointerMove):
            if isinstance(sent[index], m.PointerMove):
                last_sent_move = sent[index]
            index += 1
        assert last_sent_move == last_move
        index += 1
    moves = [msg for msg, _ in pushes if isinstance(msg, m.PointerMove)]
    if moves:
        assert [s for s in sent if isinstance(s, m.PointerMove)][-1] == moves[-1]
    # Never more than one move per interval (plus the forced ones before a button or key).
    assert sum(isinstance(s, m.PointerMove) for s in sent) <= len(others) + now / 0.008 + 2


def test_remote_input_drag_clamps_at_the_edge_and_releases() -> None:
    remote = RemoteInput(min_move_interval=0)
    remote.pointer_move(10, 10, 0)
    assert remote.take(0) == []  # no transform yet: dropped
    remote.transform = ViewTransform.fit(Rect(0, 0, 1920, 1080), 960, 540)
    remote.pointer_button(1, True, 5, 600, 0)  # outside the picture: not a press
    remote.pointer_button(1, True, 100, 100, 0)
    remote.pointer_move(100, 100, 0)  # same pixel: not sent again
    remote.pointer_move(5000, 100, 0)  # the drag continues at the edge
    remote.pointer_button(1, False, 5000, 100, 0)
    remote.pointer_button(1, False, 5000, 100, 0)  # not held: ignored
    assert remote.take(0) == [
        m.PointerMove(200, 200),
        m.PointerButton(1, True),
        m.PointerMove(1919, 200),
        m.PointerButton(1, False),
    ]


def test_remote_input_keys_text_wheel_and_release_all() -> None:
    remote = RemoteInput(min_move_interval=0)
    remote.transform = ViewTransform.fit(Rect(0, 0, 100, 100), 100, 100)
    remote.key(SHIFT_L, True, 0, 0)
    remote.key(SHIFT_L, True, m.SHIFT_MASK, 0)  # auto-repeat: dropped
    remote.key(0x41, True, m.SHIFT_MASK, 0)
    remote.text("é" * 1500, 0)
    remote.wheel(0, 120, 50, 50, 0)
    remote.wheel(0, 0, 50, 50, 0)
    remote.wheel(0, 99_999, 50, 50, 0)
    remote.pointer_button(3, True, 50, 50, 0)
    remote.release_all(0)
    remote.key(0x41, False, 0, 0)  # released already
    sent = remote.take(0)
    assert sent == [
        m.KeyEvent(SHIFT_L, True, 0),
        m.KeyEvent(0x41, True, m.SHIFT_MASK),
        m.TextInput("é" * 1024),
        m.TextInput("é" * 476),
        m.PointerMove(50, 50),
        m.Wheel(0, 120),
        m.Wheel(0, 10_000),
        m.PointerButton(3, True),
        m.KeyEvent(0x41, False, 0),
        m.KeyEvent(SHIFT_L, False, 0),
        m.PointerButton(3, False),
        m.ReleaseAll(),
    ]
    assert remote.held_keys == () and remote.held_buttons == ()
    for msg in sent:
        msg.check()  # every message is valid on the wire


# --- what ---


@pytest.mark.parametrize(
    ("special", "base", "text", "mods", "expected"),
    [
        (0xFF1B, "", "\x1b", 0, 0xFF1B),  # Escape
        (None, "A", "a", 0, ord("a")),
        (None, "A", "A", m.SHIFT_MASK, ord("A")),
        (None, "A", "\x01", m.CONTROL_MASK, ord("a")),  # Ctrl+A
        (None, "Z", "\x1a", m.CONTROL_MASK | m.SHIFT_MASK, ord("Z")),  # Ctrl+Shift+Z
        (None, "C", "", m.SUPER_MASK, ord("c")),
        (None, "1", "1", m.ALT_MASK, ord("1")),
        (None, "É", "é", 0, "é"),  # non-ASCII: text
        (None, "", "ß", 0, "ß"),
        (None, "E", "€", m.CONTROL_MASK | m.ALT_MASK, "€"),  # AltGr on Windows
        (None, "", "", 0, None),  # a dead key
        (None, "", "\x7f", 0, None),
        (None, "", "", m.CONTROL_MASK, None),
        (None, "", "日本", 0, "日本"),
    ],
)
def test_translate_key(
    special: int | None, base: str, text: str, mods: int, expected: int | str | None
) -> None:
    assert translate_key(special=special, base=base, text=text, modifiers=mods) == expected


def test_special_sequences() -> None:
    assert special_sequence(SPECIAL_KEYS["Ctrl+Alt+Del"]) == [
        m.KeyEvent(CONTROL_L, True, 0),
        m.KeyEvent(ALT_L, True, m.CONTROL_MASK),
        m.KeyEvent(DELETE, True, m.CONTROL_MASK | m.ALT_MASK),
        m.KeyEvent(DELETE, False, m.CONTROL_MASK | m.ALT_MASK),
        m.KeyEvent(ALT_L, False, m.CONTROL_MASK),
        m.KeyEvent(CONTROL_L, False, 0),
    ]
    assert special_sequence(SPECIAL_KEYS["Print Screen"]) == [
        m.KeyEvent(0xFF61, True, 0),
        m.KeyEvent(0xFF61, False, 0),
    ]
    for name in ("Alt+Tab", "Escape", "Super"):
        assert name in SPECIAL_KEYS
    remote = RemoteInput()
    remote.special(SPECIAL_KEYS["Alt+Tab"], 0)
    assert next(msg for msg in remote.take(0) if isinstance(msg, m.KeyEvent)).keysym == ALT_L


def test_describe_control_status() -> None:
    assert "not allowed" in describe_control_status(ControlStatus(ControlState.OFF, 3))
    assert "3 inputs refused" in describe_control_status(ControlStatus(ControlState.OFF, 3))
    assert "1 input refused" in describe_control_status(ControlStatus(ControlState.STOPPED, 1))
    assert describe_control_status(ControlStatus(ControlState.ACTIVE, 0)) == "You have control."
    for state in ControlState:
        assert describe_control_status(ControlStatus(state, 0))
