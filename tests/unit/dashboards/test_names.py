from __future__ import annotations

from dashboards.names import indicator_display, municipality_label, municipality_options
from vizita.contracts import ALL_KOSOVO, INDICATORS, MUNICIPALITIES


def test_labels_are_albanian_and_serbian_and_english_where_it_differs() -> None:
    assert municipality_label("prishtine") == "Prishtinë / Priština (Pristina)"
    assert municipality_label("ferizaj") == "Ferizaj / Uroševac"
    assert municipality_label("junik") == "Junik"  # the same in both languages
    assert municipality_label(ALL_KOSOVO) == "Kosova / Kosovo (all)"


def test_options_are_all_of_kosovo_then_every_municipality_alphabetically() -> None:
    options = municipality_options()
    assert options[0] == (municipality_label(ALL_KOSOVO), ALL_KOSOVO)
    assert sorted(code for _, code in options[1:]) == sorted(MUNICIPALITIES)
    labels = [label for label, _ in options[1:]]
    assert labels.index("Kaçanik / Kačanik") < labels.index("Kamenicë / Kamenica")


def test_every_indicator_has_a_title_and_shares_are_percentages() -> None:
    displays = {name: indicator_display(name) for name in INDICATORS}
    assert all(d.title for d in displays.values())
    assert displays["missed_visit_rate"].unit == "percentunit"
    assert displays["visits_completed"].unit == displays["visits_per_nurse"].unit == "none"
