"""GTO-style tags: the grammar (checked against GTO's own parser), warnings, stage replay."""

from __future__ import annotations

import pytest

from core.lineage.gitinfo import TagRef
from core.lineage.gto import (
    Action,
    GtoTag,
    current_stages,
    format_stage_tag,
    format_version_tag,
    gto_events,
    next_counter,
    parse_tag,
)

WELL_FORMED = {
    "clf@v1.2.3": GtoTag("clf@v1.2.3", "clf", Action.REGISTER, version="v1.2.3"),
    "clf@v1.2.3#4": GtoTag("clf@v1.2.3#4", "clf", Action.REGISTER, version="v1.2.3", counter=4),
    "clf@v2.0.0-rc.1+b7!#9": GtoTag(
        "clf@v2.0.0-rc.1+b7!#9", "clf", Action.DEREGISTER, version="v2.0.0-rc.1+b7", counter=9
    ),
    "clf#prod#5": GtoTag("clf#prod#5", "clf", Action.ASSIGN, stage="prod", counter=5),
    "clf#prod": GtoTag("clf#prod", "clf", Action.ASSIGN, stage="prod"),
    "clf#prod!#6": GtoTag("clf#prod!#6", "clf", Action.UNASSIGN, stage="prod", counter=6),
    "clf@deprecated#7": GtoTag("clf@deprecated#7", "clf", Action.DEPRECATE, counter=7),
    "models/dvc.yaml=clf@v1.0.0": GtoTag(
        "models/dvc.yaml=clf@v1.0.0", "models/dvc.yaml:clf", Action.REGISTER, version="v1.0.0"
    ),
}
MALFORMED = {
    "clf@v1.2": "version 'v1.2' is not SemVer",
    "clf@1.2.3": "lacks the 'v' prefix",
    "clf#prod#x": "counter 'x' is not a number",
    "clf#prod#1#2": "too many '#' parts",
}


@pytest.mark.parametrize("name", WELL_FORMED)
def test_parse_well_formed(name: str) -> None:
    assert parse_tag(name) == WELL_FORMED[name]


@pytest.mark.parametrize("name", [*WELL_FORMED, *MALFORMED, "v1.0", "release-3", "-x@v1.0.0"])
def test_same_verdict_as_gto_itself(name: str) -> None:
    gto_tag = pytest.importorskip("gto.tag")
    theirs = gto_tag.parse_name(name, raise_on_fail=False)
    ours = parse_tag(name)
    assert bool(ours) == bool(theirs)
    if ours:
        assert ours.action.value == theirs["action"].value
        assert (ours.version, ours.stage, ours.counter) == (
            theirs.get("version"),
            theirs.get("stage"),
            theirs.get("counter"),
        )


def ref(name: str, commit: str = "a" * 40, date: str = "2024-01-01T00:00:00+00:00") -> TagRef:
    return TagRef(name=name, commit=commit, tagger="T <t@x>", date=date, annotated=True)


def test_malformed_tags_are_skipped_with_a_warning_each() -> None:
    refs = [ref(name) for name in MALFORMED] + [ref("clf@v1.0.0"), ref("v1.0"), ref("release-3")]

    events, warnings = gto_events(refs)

    assert [e.tag for e in events] == ["clf@v1.0.0"]
    assert len(warnings) == len(MALFORMED)
    for name, reason in MALFORMED.items():
        assert any(w.startswith(f"tag '{name}' skipped: ") and reason in w for w in warnings)


def test_current_stages_replays_in_time_order_across_time_zones() -> None:
    c1, c2 = "1" * 40, "2" * 40
    refs = [
        # Listed out of order on purpose; 10:00+02:00 is earlier than 09:00+00:00.
        ref("clf#prod#4", c2, "2024-01-02T09:00:00+00:00"),
        ref("clf@v1.0.0#1", c1, "2024-01-01T00:00:00+00:00"),
        ref("clf#prod#2", c1, "2024-01-01T01:00:00+00:00"),
        ref("clf@v1.1.0#3", c2, "2024-01-02T10:00:00+02:00"),
        ref("clf#staging#5", c2, "2024-01-03T00:00:00+00:00"),
        ref("iris#dev#1", c1, "2024-01-01T00:00:00+00:00"),
        ref("iris#dev!#2", c1, "2024-01-04T00:00:00+00:00"),
    ]

    events, warnings = gto_events(refs)

    assert warnings == []
    assert current_stages(events) == {"clf": {"prod": "v1.1.0", "staging": "v1.1.0"}}


def test_deprecation_and_deregistration_clear_stages() -> None:
    c1 = "1" * 40
    events, _ = gto_events(
        [
            ref("clf@v1.0.0#1", c1, "2024-01-01T00:00:00Z"),
            ref("clf#prod#2", c1, "2024-01-01T00:01:00Z"),
            ref("clf@v1.0.0!#3", c1, "2024-01-01T00:02:00Z"),
            ref("old@v1.0.0#1", c1, "2024-01-01T00:00:00Z"),
            ref("old#dev#2", c1, "2024-01-01T00:01:00Z"),
            ref("old@deprecated#3", c1, "2024-01-01T00:02:00Z"),
            ref("raw#dev#1", "f" * 40, "2024-01-01T00:00:00Z"),
        ]
    )

    # An assignment at a commit with no registered version names the commit, as GTO does.
    assert current_stages(events) == {"raw": {"dev": "fffffff"}}


def test_formatting_round_trips_and_validates() -> None:
    assert format_version_tag("clf", "1.2.3") == "clf@v1.2.3"
    assert format_version_tag("clf", "v1.2.3", counter=3) == "clf@v1.2.3#3"
    assert format_stage_tag("clf", "prod", 4) == "clf#prod#4"
    assert parse_tag(format_stage_tag("sub/dvc.yaml:clf", "prod", 1)) == GtoTag(
        "sub/dvc.yaml=clf#prod#1", "sub/dvc.yaml:clf", Action.ASSIGN, stage="prod", counter=1
    )
    with pytest.raises(ValueError, match="not a valid GTO version tag"):
        format_version_tag("clf", "1.2")
    with pytest.raises(ValueError, match="not a valid GTO stage tag"):
        format_stage_tag("clf", "no stage!", 1)


def test_next_counter_is_per_artifact() -> None:
    refs = [ref("clf@v1.0.0#1"), ref("clf#prod#7"), ref("iris#dev#9"), ref("clf#old")]

    assert next_counter(refs, "clf") == 8
    assert next_counter(refs, "new") == 1
