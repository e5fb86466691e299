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
    english: str | None = None  # only where English usage differs from both names


_TABLE = (
    Municipality("decan", "Deçan", "Dečani"),
    Municipality("dragash", "Dragash", "Dragaš"),
    Municipality("ferizaj", "Ferizaj", "Uroševac"),
    Municipality("fushe_kosove", "Fushë Kosovë", "Kosovo Polje"),
    Municipality("gjakove", "Gjakovë", "Đakovica"),
    Municipality("gjilan", "Gjilan", "Gnjilane"),
    Municipality("gllogoc", "Gllogoc", "Glogovac"),
    Municipality("gracanice", "Graçanicë", "Gračanica"),
    Municipality("hani_i_elezit", "Hani i Elezit", "Elez Han"),
    Municipality("istog", "Istog", "Istok"),
    Municipality("junik", "Junik", "Junik"),
    Municipality("kacanik", "Kaçanik", "Kačanik"),
    Municipality("kamenice", "Kamenicë", "Kamenica"),
    Municipality("kline", "Klinë", "Klina"),
    Municipality("kllokot", "Kllokot", "Klokot"),
    Municipality("leposaviq", "Leposaviq", "Leposavić"),
    Municipality("lipjan", "Lipjan", "Lipljan"),
    Municipality("malisheve", "Malishevë", "Mališevo"),
    Municipality("mamushe", "Mamushë", "Mamuša"),
    Municipality("mitrovice_jugore", "Mitrovicë e Jugut", "Južna Mitrovica", "South Mitrovica"),
    Municipality("mitrovice_veriore", "Mitrovicë e Veriut", "Severna Mitrovica", "North Mitrovica"),
    Municipality("novoberde", "Novobërdë", "Novo Brdo"),
    Municipality("obiliq", "Obiliq", "Obilić"),
    Municipality("partesh", "Partesh", "Parteš"),
    Municipality("peje", "Pejë", "Peć"),
    Municipality("podujeve", "Podujevë", "Podujevo"),
    Municipality("prishtine", "Prishtinë", "Priština", "Pristina"),
    Municipality("prizren", "Prizren", "Prizren"),
    Municipality("rahovec", "Rahovec", "Orahovac"),
    Municipality("ranillug", "Ranillug", "Ranilug"),
    Municipality("shterpce", "Shtërpcë", "Štrpce"),
    Municipality("shtime", "Shtime", "Štimlje"),
    Municipality("skenderaj", "Skënderaj", "Srbica"),
    Municipality("suhareke", "Suharekë", "Suva Reka"),
    Municipality("viti", "Viti", "Vitina"),
    Municipality("vushtrri", "Vushtrri", "Vučitrn"),
    Municipality("zubin_potok", "Zubin Potok", "Zubin Potok"),
    Municipality("zvecan", "Zveçan", "Zvečan"),
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
