"""The 38 municipalities of Kosovo (SPEC §6) and `ALL`, the whole country.

This table is the one place their codes and names are written; the event's
`municipality` type, the scopes of the indicators, the terminal, the report and the
dashboards all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Final

from pydantic import WithJsonSchema

from vizita.contract.codes import one_of


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str
    albanian: str
    serbian: str
    english: str | None  # only where English usage differs from both names
    # The municipal seat, in degrees (WGS 84), to place the municipality on a map: an
    # approximation to about a kilometre, from public gazetteers; not a boundary.
    latitude: float
    longitude: float


_TABLE = (
    Municipality("decan", "Deçan", "Dečani", None, 42.540, 20.288),
    Municipality("dragash", "Dragash", "Dragaš", None, 42.062, 20.653),
    Municipality("ferizaj", "Ferizaj", "Uroševac", None, 42.370, 21.155),
    Municipality("fushe_kosove", "Fushë Kosovë", "Kosovo Polje", None, 42.637, 21.094),
    Municipality("gjakove", "Gjakovë", "Đakovica", None, 42.380, 20.430),
    Municipality("gjilan", "Gjilan", "Gnjilane", None, 42.464, 21.469),
    Municipality("gllogoc", "Gllogoc", "Glogovac", None, 42.628, 20.894),
    Municipality("gracanice", "Graçanicë", "Gračanica", None, 42.599, 21.193),
    Municipality("hani_i_elezit", "Hani i Elezit", "Elez Han", None, 42.150, 21.297),
    Municipality("istog", "Istog", "Istok", None, 42.781, 20.487),
    Municipality("junik", "Junik", "Junik", None, 42.475, 20.277),
    Municipality("kacanik", "Kaçanik", "Kačanik", None, 42.231, 21.258),
    Municipality("kamenice", "Kamenicë", "Kamenica", None, 42.578, 21.580),
    Municipality("kline", "Klinë", "Klina", None, 42.621, 20.577),
    Municipality("kllokot", "Kllokot", "Klokot", None, 42.367, 21.372),
    Municipality("leposaviq", "Leposaviq", "Leposavić", None, 43.104, 20.803),
    Municipality("lipjan", "Lipjan", "Lipljan", None, 42.523, 21.126),
    Municipality("malisheve", "Malishevë", "Mališevo", None, 42.483, 20.746),
    Municipality("mamushe", "Mamushë", "Mamuša", None, 42.324, 20.724),
    Municipality(
        "mitrovice_jugore",
        "Mitrovicë e Jugut",
        "Južna Mitrovica",
        "South Mitrovica",
        42.881,
        20.866,
    ),
    Municipality(
        "mitrovice_veriore",
        "Mitrovicë e Veriut",
        "Severna Mitrovica",
        "North Mitrovica",
        42.899,
        20.868,
    ),
    Municipality("novoberde", "Novobërdë", "Novo Brdo", None, 42.615, 21.435),
    Municipality("obiliq", "Obiliq", "Obilić", None, 42.687, 21.077),
    Municipality("partesh", "Partesh", "Parteš", None, 42.403, 21.434),
    Municipality("peje", "Pejë", "Peć", None, 42.659, 20.288),
    Municipality("podujeve", "Podujevë", "Podujevo", None, 42.911, 21.193),
    Municipality("prishtine", "Prishtinë", "Priština", "Pristina", 42.663, 21.166),
    Municipality("prizren", "Prizren", "Prizren", None, 42.213, 20.740),
    Municipality("rahovec", "Rahovec", "Orahovac", None, 42.399, 20.655),
    Municipality("ranillug", "Ranillug", "Ranilug", None, 42.492, 21.599),
    Municipality("shterpce", "Shtërpcë", "Štrpce", None, 42.240, 21.025),
    Municipality("shtime", "Shtime", "Štimlje", None, 42.433, 21.040),
    Municipality("skenderaj", "Skënderaj", "Srbica", None, 42.747, 20.789),
    Municipality("suhareke", "Suharekë", "Suva Reka", None, 42.360, 20.826),
    Municipality("viti", "Viti", "Vitina", None, 42.322, 21.358),
    Municipality("vushtrri", "Vushtrri", "Vučitrn", None, 42.823, 20.967),
    Municipality("zubin_potok", "Zubin Potok", "Zubin Potok", None, 42.914, 20.690),
    Municipality("zvecan", "Zveçan", "Zvečan", None, 42.907, 20.841),
)

#: code -> municipality, in SPEC §6's order (iterating gives the codes)
MUNICIPALITIES: Final[Mapping[str, Municipality]] = {m.code: m for m in _TABLE}
#: the scope of the country as a whole: indicators only, never a visit's municipality
ALL_KOSOVO: Final = "ALL"
#: every scope indicators are produced for
SCOPES: Final[tuple[str, ...]] = (*MUNICIPALITIES, ALL_KOSOVO)


#: a visit's municipality: one of the 38 codes
MunicipalityCode = Annotated[
    str,
    one_of(frozenset(MUNICIPALITIES), "38 municipality codes (SPEC §6)"),
    WithJsonSchema({"type": "string", "enum": list(MUNICIPALITIES)}),
]
#: a scope of the indicators: one of the 38 codes or ALL
ScopeCode = Annotated[
    str,
    one_of(frozenset(SCOPES), "38 municipality codes or ALL"),
    WithJsonSchema({"type": "string", "enum": list(SCOPES)}),
]
