"""The targets file (SPEC §4): read, merged per municipality, refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from vizita.contract.errors import ConfigError
from vizita.contract.municipalities import MUNICIPALITIES
from vizita.contract.settings import CONFIG_DIR
from vizita.contract.targets import Target, Targets, load_targets

CONFIG = CONFIG_DIR / "targets.yaml"


def test_the_configured_targets_are_read() -> None:
    targets = load_targets(CONFIG)
    assert targets.min_denominator == 20
    assert targets.hysteresis == 0.02
    assert targets.defaults["immunisation_counselling_coverage"] == Target(min=0.90)
    assert targets.defaults["missed_visit_rate"] == Target(max=0.15)
    assert targets.municipalities["prizren"] == {"visits_completed": Target(min=120)}
    for target in targets.defaults.values():
        assert (target.min is None) != (target.max is None)


def test_for_municipality_merges_defaults_with_overrides() -> None:
    targets = load_targets(CONFIG)
    plain = targets.for_municipality("decan")
    assert plain == {str(k): v for k, v in targets.defaults.items()}
    prizren = targets.for_municipality("prizren")
    assert prizren == {**plain, "visits_completed": Target(min=120)}

    custom = Targets.model_validate({
        "min_denominator": 5,
        "hysteresis": 0.01,
        "defaults": {
            "missed_visit_rate": {"max": 0.15},
            "early_stimulation_coverage": {"min": 0.7},
        },
        "municipalities": {
            "peje": {"missed_visit_rate": {"max": 0.25}, "households_reached": {"min": 30}},
            "junik": {},
        },
    })  # fmt: skip
    assert custom.for_municipality("peje") == {
        "missed_visit_rate": Target(max=0.25),
        "early_stimulation_coverage": Target(min=0.7),
        "households_reached": Target(min=30),
    }
    assert custom.for_municipality("junik") == custom.for_municipality("decan")
    assert custom.for_municipality("decan") == {
        "missed_visit_rate": Target(max=0.15),
        "early_stimulation_coverage": Target(min=0.7),
    }
    # The merge is a copy: changing one answer changes neither the defaults nor the next.
    custom.for_municipality("decan").clear()
    assert len(custom.for_municipality("decan")) == 2
    every = custom.every_municipality()
    assert set(every) == set(MUNICIPALITIES)
    assert every["peje"]["missed_visit_rate"] == Target(max=0.25)


@pytest.mark.parametrize(
    "target",
    [
        "{min: 0.5, max: 0.9}",
        "{}",
        "{min: null, max: null}",
        "{min: 0.5, below: 0.9}",
    ],
)
def test_load_targets_rejects_a_target_without_exactly_one_bound(
    tmp_path: Path, target: str
) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(
        f"min_denominator: 20\nhysteresis: 0.02\ndefaults:\n  missed_visit_rate: {target}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"targets\.yaml"):
        load_targets(path)
    path.write_text(
        "min_denominator: 20\nhysteresis: 0.02\nmunicipalities:\n"
        f"  prizren:\n    visits_completed: {target}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"targets\.yaml"):
        load_targets(path)


@pytest.mark.parametrize(
    "body",
    [
        "min_denominator: 20\nhysteresis: 0.02\ndefaults:\n  no_such_indicator: {min: 1}\n",
        "min_denominator: 20\nhysteresis: 0.02\nmunicipalities:\n  atlantis: {}\n",
        "min_denominator: 20\nhysteresis: 0.02\nmunicipalities:\n  ALL: {}\n",
        "min_denominator: -1\nhysteresis: 0.02\n",
        "min_denominator: 20\nhysteresis: -0.01\n",
        "hysteresis: 0.02\n",
    ],
)
def test_load_targets_rejects_unknown_names_and_bad_numbers(tmp_path: Path, body: str) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"targets\.yaml"):
        load_targets(path)
