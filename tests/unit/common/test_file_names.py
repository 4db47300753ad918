"""The received-name sanitiser and tree planner (security.md 5.2, 9 cases 35, 36, 41)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from common.files.names import (
    FALLBACK_NAME,
    MAX_NAME_BYTES,
    NameChange,
    TreeEntry,
    TreeLimits,
    is_device_name,
    is_risky_type,
    is_safe_component,
    plan_tree,
    sanitise_component,
    sanitise_name,
)
from common.files.refusal import Refusal, TransferRefused


BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"


def safe(raw: str) -> str:
    return sanitise_name(raw).name


def assert_single_safe_component(name: str) -> None:
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(c in name for c in '<>:"|?*')
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in name)
    assert not name.endswith((".", " ")) and not name.startswith((".", " "))
    assert not is_device_name(name)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert unicodedata.is_normalized("NFC", name)


# --- case 35: paths are reduced to the basename ---------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../x", "x"),
        ("..\\..\\x", "x"),
        ("/etc/passwd", "passwd"),
        ("C:\\Windows\\x", "x"),
        ("\\\\server\\share\\x", "x"),
        ("C:x.txt", "x.txt"),
        ("C:", FALLBACK_NAME),
        ("//?/C:/x", "x"),
        ("\\\\?\\UNC\\srv\\s\\x.doc", "x.doc"),
        ("a/b/", "b"),
        ("a/..", FALLBACK_NAME),
        ("..", FALLBACK_NAME),
        (".", FALLBACK_NAME),
        ("", FALLBACK_NAME),
        ("/", FALLBACK_NAME),
        ("file:///etc/shadow", "shadow"),
    ],
)
def test_paths_become_the_last_component(raw: str, expected: str) -> None:
    result = sanitise_name(raw)
    assert result.name == expected
    assert_single_safe_component(result.name)
    if raw not in ("", expected):
        assert result.changed


def test_path_removal_is_reported() -> None:
    assert NameChange.PATH_REMOVED in sanitise_name("../../x").changes
    assert sanitise_name("report.pdf").changes == frozenset()


# --- case 36: device names, streams, edges, length, controls, bidi --------


@pytest.mark.parametrize(
    "raw",
    ["CON", "con", "nul.txt", "NUL.tar.gz", "COM1", "com9.log", "LPT1", "lpt0.x", "COM\u00b9",
     "LPT\u00b2.txt", "AUX", "prn.", "nul .txt", "CONIN$", "conout$.x", "CLOCK$"],
)  # fmt: skip
def test_device_names_are_defused(raw: str) -> None:
    assert is_device_name(raw)
    result = sanitise_name(raw)
    assert not is_device_name(result.name)
    assert result.name.startswith("_")
    assert NameChange.DEVICE_NAME in result.changes


@pytest.mark.parametrize("raw", ["CONSOLE", "COM10", "nulls.txt", "acon", "LPT", "com"])
def test_names_that_only_look_like_devices_are_kept(raw: str) -> None:
    assert not is_device_name(raw)
    assert safe(raw) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a:stream", "stream"),  # Windows reads "a:" as drive A:
        ("data:stream", "data_stream"),
        ("file.txt:Zone.Identifier:$DATA", "file.txt_Zone.Identifier_$DATA"),
        ('a<b>c"d|e?f*g', "a_b_c_d_e_f_g"),
        ("name.", "name"),
        ("name ", "name"),
        ("name. . .", "name"),
        ("evil.exe.", "evil.exe"),
        ("  spaced  ", "spaced"),
        (".bashrc", "bashrc"),
        ("...", FALLBACK_NAME),
        ("a\x00b", "a_b"),
        ("a\nb\tc\x7fd", "a_b_c_d"),
        ("a\u2028b", "a_b"),
        ("a\ud800b", "a_b"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
    ],
)
def test_characters_and_edges(raw: str, expected: str) -> None:
    assert safe(raw) == expected


def test_rlo_disguise_is_undone_and_warned() -> None:
    raw = "invoice\u202efdp.exe"  # displays as "invoiceexe.pdf"
    result = sanitise_name(raw)
    assert result.name == "invoicefdp.exe"
    assert NameChange.INVISIBLE_REMOVED in result.changes
    assert is_risky_type(raw)
    assert is_risky_type(result.name)


@pytest.mark.parametrize("mark", list(BIDI))
def test_every_bidi_control_is_removed(mark: str) -> None:
    assert safe(f"a{mark}b.txt") == "ab.txt"


def test_300_byte_utf8_name_keeps_its_extension_and_character_boundaries() -> None:
    raw = "é" * 150 + ".pdf"  # 304 bytes
    result = sanitise_name(raw)
    assert NameChange.TRUNCATED in result.changes
    assert result.name.endswith(".pdf")
    assert len(result.name.encode("utf-8")) <= MAX_NAME_BYTES
    assert result.name[:-4] == "é" * len(result.name[:-4])


def test_long_names_of_four_byte_characters() -> None:
    result = sanitise_name("😀" * 100 + ".txt")
    assert result.name.endswith(".txt")
    assert len(result.name.encode("utf-8")) <= MAX_NAME_BYTES


def test_a_long_extension_is_not_kept_whole() -> None:
    result = safe("a." + "x" * 300)
    assert len(result.encode("utf-8")) <= MAX_NAME_BYTES


def test_truncation_never_leaves_a_trailing_dot_or_space() -> None:
    raw = "a" * (MAX_NAME_BYTES - 5) + " . .  " + "b" * 40 + ".txt"
    assert_single_safe_component(safe(raw))


def test_unicode_is_normalised_to_nfc() -> None:
    decomposed = "cafe\u0301.txt"
    result = sanitise_name(decomposed)
    assert result.name == "caf\u00e9.txt"
    assert NameChange.NORMALISED in result.changes
    # A removed format character between a base and a combining mark recomposes.
    assert safe("e\u200b\u0301") == "\u00e9"


def test_ordinary_names_are_left_alone() -> None:
    for name in ["report.pdf", "Screenshot 2024-05-01 at 10.00.00.png", "日本語.txt", "a b c", "x"]:
        assert sanitise_name(name).changes == frozenset()
        assert safe(name) == name


def test_component_sanitiser_does_not_look_for_folders() -> None:
    assert sanitise_component("a/b\\c").name == "a_b_c"


# --- risky types (the red warning) ----------------------------------------


@pytest.mark.parametrize(
    "name",
    ["setup.exe", "SETUP.EXE", "x.msi", "run.bat", "a.cmd", "a.ps1", "a.vbs", "a.js", "a.hta",
     "a.scr", "a.lnk", "a.url", "a.dll", "a.jar", "a.app", "a.pkg", "a.dmg", "a.sh", "a.desktop",
     "report.pdf.exe", "evil.exe.", "evil.exe ", "x.AppImage", "x.py"],
)  # fmt: skip
def test_risky_types(name: str) -> None:
    assert is_risky_type(name)


@pytest.mark.parametrize("name", ["notes.txt", "setup.exe.txt", "photo.jpg", "exe", "README"])
def test_harmless_types(name: str) -> None:
    assert not is_risky_type(name)


# --- properties -----------------------------------------------------------

names = st.one_of(
    st.text(max_size=400),
    st.text(alphabet="./\\:aC ON\x00\u202e1\u00b9é"),
    st.lists(
        st.sampled_from(["..", ".", "CON", "a", "b.exe", "\u202e", " ", "\\", "/", "é" * 60])
    ).map("".join),
)


@settings(max_examples=600, deadline=None)
@given(names)
def test_output_is_always_one_safe_component(raw: str) -> None:
    out = safe(raw)
    assert_single_safe_component(out)
    assert is_safe_component(out)


@settings(max_examples=600, deadline=None)
@given(names)
def test_sanitiser_is_idempotent(raw: str) -> None:
    once = sanitise_name(raw)
    twice = sanitise_name(once.name)
    assert twice.name == once.name
    assert twice.changes == frozenset()
    assert sanitise_component(once.name).name == once.name


plain_chars = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cf", "Cs", "Zl", "Zp"),
    exclude_characters='<>:"|?*/\\',
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=plain_chars, min_size=1, max_size=50))
def test_plain_names_survive(raw: str) -> None:
    raw = unicodedata.normalize("NFC", raw)
    out = safe(raw)
    if raw.strip(" ").lstrip(".").rstrip(". ") == raw and not is_device_name(raw):
        assert out == raw


# --- folder trees (and case 41's archive rules) ---------------------------

LIMITS = TreeLimits(max_depth=4, max_entries=10, max_total_bytes=1000, max_path_bytes=300)


def refusal(entries: list[TreeEntry], limits: TreeLimits = LIMITS) -> Refusal:
    with pytest.raises(TransferRefused) as caught:
        plan_tree(entries, limits)
    return caught.value.reason


def test_a_plain_tree_is_planned_folders_first() -> None:
    plan = plan_tree(
        [TreeEntry("logs/a.txt", 10), TreeEntry("logs", is_dir=True), TreeEntry("logs/sub/b", 5)],
        LIMITS,
    )
    assert [e.parts for e in plan.entries] == [("logs",), ("logs", "a.txt"), ("logs", "sub", "b")]
    assert plan.total_bytes == 15 and plan.file_count == 2 and plan.renamed == 0


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../x", Refusal.TRAVERSAL),
        ("a/../../x", Refusal.TRAVERSAL),
        ("a\\..\\x", Refusal.TRAVERSAL),
        ("./x", Refusal.TRAVERSAL),
        ("/etc/passwd", Refusal.ABSOLUTE_PATH),
        ("\\\\server\\share\\x", Refusal.ABSOLUTE_PATH),
        ("C:\\Windows\\x", Refusal.ABSOLUTE_PATH),
        ("C:x", Refusal.ABSOLUTE_PATH),
        ("a//b", Refusal.EMPTY_COMPONENT),
        ("a/", Refusal.EMPTY_COMPONENT),
        ("", Refusal.EMPTY_COMPONENT),
    ],
)
def test_trees_that_climb_are_refused(path: str, reason: Refusal) -> None:
    assert refusal([TreeEntry("ok.txt", 1), TreeEntry(path, 1)]) is reason


def test_tree_components_are_sanitised() -> None:
    plan = plan_tree([TreeEntry("CON/nul.txt", 1), TreeEntry("a./b\u202e.txt", 1)], LIMITS)
    assert {e.parts for e in plan.entries} == {("_CON", "_nul.txt"), ("a", "b.txt")}
    assert plan.renamed == 2


def test_tree_limits() -> None:
    assert refusal([TreeEntry("a/b/c/d/e")]) is Refusal.TOO_DEEP
    assert refusal([TreeEntry(f"f{i}") for i in range(11)]) is Refusal.TOO_MANY_ENTRIES
    assert refusal([TreeEntry("a", 600), TreeEntry("b", 401)]) is Refusal.TREE_TOO_LARGE
    assert refusal([TreeEntry("/".join(["x" * 100] * 3) + "x")]) is Refusal.PATH_TOO_LONG
    assert refusal([TreeEntry("a", -1)]) is Refusal.BAD_OFFER
    assert refusal([TreeEntry("d", 5, is_dir=True)]) is Refusal.BAD_OFFER
    plan_tree([TreeEntry("a", 600), TreeEntry("b", 400)], LIMITS)


def test_entries_that_collide_after_sanitising_are_refused() -> None:
    assert refusal([TreeEntry("a"), TreeEntry("a")]) is Refusal.DUPLICATE_PATH
    assert refusal([TreeEntry("a."), TreeEntry("a")]) is Refusal.DUPLICATE_PATH
    assert refusal([TreeEntry("Readme"), TreeEntry("README")]) is Refusal.DUPLICATE_PATH


def test_a_file_cannot_also_be_a_folder() -> None:
    assert refusal([TreeEntry("a", 1), TreeEntry("a/b", 1)]) is Refusal.FILE_AS_FOLDER


def test_the_entry_limit_stops_an_endless_stream() -> None:
    def endless() -> object:
        n = 0
        while True:
            yield TreeEntry(f"f{n}")
            n += 1

    assert refusal(endless()) is Refusal.TOO_MANY_ENTRIES  # type: ignore[arg-type]


def test_ten_thousand_small_files_fit_the_default_limits() -> None:
    plan = plan_tree(
        (TreeEntry(f"d{i // 100}/f{i}.log", 4096) for i in range(10_000)), TreeLimits()
    )
    assert plan.file_count == 10_000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names, st.integers(0, 50), st.booleans()), max_size=8))
def test_planned_trees_hold_only_safe_components(raw: list[tuple[str, int, bool]]) -> None:
    entries = [TreeEntry(p, 0 if d else s, d) for p, s, d in raw]
    try:
        plan = plan_tree(entries, TreeLimits())
    except TransferRefused:
        return
    for entry in plan.entries:
        for part in entry.parts:
            assert_single_safe_component(part)
