"""The table of municipalities (SPEC §6): the codes, and where each is on a map."""

from __future__ import annotations

from vizita.contract.municipalities import ALL_KOSOVO, MUNICIPALITIES, SCOPES

# Kosovo lies within these, with a little room.
NORTH, SOUTH, WEST, EAST = 43.3, 41.8, 20.0, 21.8


def test_the_38_codes_of_the_spec_and_all() -> None:
    assert len(MUNICIPALITIES) == 38
    assert (*MUNICIPALITIES, ALL_KOSOVO) == SCOPES
    assert all(code == place.code for code, place in MUNICIPALITIES.items())


def test_every_seat_is_in_kosovo_and_no_two_share_a_place() -> None:
    places = {(m.latitude, m.longitude) for m in MUNICIPALITIES.values()}
    assert len(places) == 38
    for m in MUNICIPALITIES.values():
        assert SOUTH < m.latitude < NORTH, m.code
        assert WEST < m.longitude < EAST, m.code


def test_north_is_north() -> None:
    # A mixed-up latitude and longitude would put Prizren (south) above Leposaviq (north).
    assert MUNICIPALITIES["leposaviq"].latitude > MUNICIPALITIES["prishtine"].latitude
    assert MUNICIPALITIES["prishtine"].latitude > MUNICIPALITIES["prizren"].latitude
    assert MUNICIPALITIES["peje"].longitude < MUNICIPALITIES["gjilan"].longitude
