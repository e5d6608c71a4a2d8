"""GTO tag names, by property: what GTO writes relman reads as the same event, what relman
writes GTO reads as what was asked, and a name GTO refuses relman refuses too.

GTO itself is the oracle (``gto.tag``: its templates and its parser), so the tests follow
GTO's grammar, not a copy of it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.lineage.gitinfo import TagRef
from core.lineage.gto import Action, format_stage_tag, format_version_tag, gto_events, parse_tag

gto_tag = pytest.importorskip("gto.tag")
gto_constants = pytest.importorskip("gto.constants")

FAST = settings(max_examples=150, deadline=None, database=None)

# GTO's grammar (gto/constants.py): a name starts and ends with a letter or digit, with
# letters, digits, '-', '/', '_' between; an artifact of a nested dvc.yaml is "dir:name".
NAMES = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9/_-]{0,12}[a-zA-Z0-9])?", fullmatch=True)
DIRS = st.from_regex(r"[a-zA-Z0-9_./-]{1,12}", fullmatch=True)
ARTIFACTS = NAMES | st.builds(lambda d, n: f"{d}:{n}", DIRS, NAMES)
NUMBER = st.integers(0, 10**6).map(str)
# SemVer identifiers: a number without leading zeros, or alphanumerics with a letter or '-'.
WORD = st.from_regex(r"[0-9]*[a-zA-Z-][0-9a-zA-Z-]{0,5}", fullmatch=True)
PRERELEASE = st.lists(NUMBER | WORD, min_size=1, max_size=3).map(".".join)
BUILD = st.lists(st.from_regex(r"[0-9a-zA-Z-]{1,6}", fullmatch=True), min_size=1, max_size=3)
VERSIONS = st.builds(
    lambda core, pre, build: (
        "v" + ".".join(core) + (f"-{pre}" if pre else "") + (f"+{'.'.join(build)}" if build else "")
    ),
    st.tuples(NUMBER, NUMBER, NUMBER),
    st.none() | PRERELEASE,
    st.none() | BUILD,
)
COUNTERS = st.integers(1, 10**6)


def event_of(tag: str) -> Any:
    ref = TagRef(tag, "c" * 40, "T <t@x>", "2024-01-01T00:00:00Z", annotated=True)
    events, warnings = gto_events([ref])
    assert warnings == []
    (event,) = events
    return event


@FAST
@given(
    action=st.sampled_from(list(Action)),
    artifact=ARTIFACTS,
    version=VERSIONS,
    stage=NAMES,
    counter=st.none() | COUNTERS,
)
def test_a_tag_gto_writes_reads_back_as_the_same_event(
    action: Action, artifact: str, version: str, stage: str, counter: int | None
) -> None:
    theirs = gto_constants.Action(action.value)
    tag = gto_tag.name_tag(theirs, artifact, version=version, stage=stage, simple=True)
    tag += "" if counter is None else f"#{counter}"
    event = event_of(tag)
    assert (event.tag, event.artifact, event.action, event.counter) == (
        tag,
        artifact,
        action,
        counter,
    )
    has_version = action in (Action.REGISTER, Action.DEREGISTER)
    has_stage = action in (Action.ASSIGN, Action.UNASSIGN)
    assert event.version == (version if has_version else None)
    assert event.stage == (stage if has_stage else None)


@FAST
@given(artifact=ARTIFACTS, version=VERSIONS, stage=NAMES, counter=COUNTERS)
def test_the_tags_relman_writes_read_back_as_asked_in_relman_and_in_gto(
    artifact: str, version: str, stage: str, counter: int
) -> None:
    for tag, action in [
        (format_version_tag(artifact, version), Action.REGISTER),
        (format_version_tag(artifact, version.removeprefix("v"), counter), Action.REGISTER),
        (format_stage_tag(artifact, stage, counter), Action.ASSIGN),
    ]:
        event = event_of(tag)
        theirs = gto_tag.parse_name(tag)
        assert (event.artifact, theirs["name"]) == (artifact, artifact)
        assert event.action == action and theirs["action"].value == action.value
        if action is Action.REGISTER:
            assert event.version == theirs["version"] == version
        else:
            assert (event.stage, event.counter) == (stage, counter)
            assert (theirs["stage"], theirs["counter"]) == (stage, counter)


# Strings near the grammar: each part of a tag either well formed or bent a little (a
# character the grammar forbids, at the start, the end or inside), and a few free texts.
BENT = st.text("-_./=:@#!v0 é\n", min_size=1, max_size=2)
LOOSE_NAMES = NAMES | st.builds(
    lambda n, b, at: n[:at] + b + n[at:], NAMES, BENT, st.integers(0, 99)
)
LOOSE_VERSIONS = VERSIONS | st.sampled_from(["1.2.3", "v1.2", "v01.2.3", "v1.2.3-", "v1.2.3+"])
ACTIONS = (
    st.builds(lambda v: f"@{v}", LOOSE_VERSIONS)
    | st.builds(lambda s: f"#{s}", LOOSE_NAMES)
    | st.sampled_from(["@deprecated", "@created", "@", "#"])
)
COUNTER_TEXT = st.sampled_from(["", "#7", "#0", "#01", "#x", "#", "#1#2"])
TAGS_AND_NEAR_MISSES = st.builds(
    lambda a, act, cancel, n: a + act + cancel + n,
    ARTIFACTS | LOOSE_NAMES,
    ACTIONS,
    st.sampled_from(["", "!"]),
    COUNTER_TEXT,
)
NEAR = TAGS_AND_NEAR_MISSES | st.text("ab1v.=:@#!-_/ ", max_size=16)


@settings(max_examples=400, deadline=None, database=None)
@given(name=NEAR)
@example("clf@created")
@example("clf@v1.2.3!#4")
@example("models/dvc.yaml=clf#prod!")
def test_relman_reads_a_tag_name_exactly_as_gto_does(name: str) -> None:
    ours = parse_tag(name)
    theirs = gto_tag.parse_name(name, raise_on_fail=False)
    if "action" not in theirs:
        # GTO refuses the name, or (``NAME@created``) reads it as no event at all.
        assert ours is None
        return
    assert ours is not None, f"GTO reads {name!r} as {theirs}, relman does not"
    assert (ours.artifact, ours.action.value) == (theirs["name"], theirs["action"].value)
    assert (ours.version, ours.stage, ours.counter) == (
        theirs.get("version"),
        theirs.get("stage"),
        theirs.get("counter"),
    )


@FAST
@given(name=NEAR | ARTIFACTS, text=NEAR | VERSIONS | NAMES, counter=COUNTERS)
@example(name="x=y", text="v1.0.0", counter=1)  # a '=' that GTO reads back as ':'
@example(name="clf", text="1.0.0!", counter=1)  # a version that reads as a deregistration
@example(name="clf", text="prod!", counter=1)  # a stage that reads as an unassignment
@example(name="clf", text="prod-", counter=1)  # relman.toml allows it, GTO does not
def test_what_gto_would_not_read_as_asked_relman_refuses_to_write(
    name: str, text: str, counter: int
) -> None:
    """A malformed artifact, version or stage is refused (ValueError) before any tag is
    written: never a tag that GTO skips, nor one that it reads as another event."""
    version = text if text.startswith("v") else f"v{text}"
    attempts = [
        (lambda: format_version_tag(name, text), dict(action=Action.REGISTER, version=version)),
        (
            lambda: format_stage_tag(name, text, counter),
            dict(action=Action.ASSIGN, stage=text, counter=counter),
        ),
    ]
    for write, meaning in attempts:
        try:
            tag = write()
        except ValueError:
            continue  # refused: fine whatever GTO would have said
        theirs = gto_tag.parse_name(tag, raise_on_fail=False)
        assert theirs.get("name") == name, f"{tag!r} names {theirs.get('name')!r}, not {name!r}"
        assert theirs.get("action") is not None
        assert theirs["action"].value == meaning["action"].value
        for key in ("version", "stage", "counter"):
            if key in meaning:
                assert theirs.get(key) == meaning[key], f"{tag!r}: {key}"
