"""Maps of Kosovo: the 38 municipalities at their seats on Grafana's core Geomap panel,
one map per indicator that has a target, each marker coloured by how far the
municipality's 30-day value is from its target, with the value, its denominator, the
target and the standing on hover.

The Foundation SDK (11.6) has the Geomap panel and its options, but the layers' own
`config` is free-form there; the markers layer's is Grafana's `MarkersConfig`
(public/app/plugins/panel/geomap/layers/data/markersLayer.tsx, `StyleConfig` in
style/types.ts). A marker's colour is its `from_target` field's colour, by the field's
thresholds; the hover lists every field but those hidden from the tooltip
(components/DataHoverView.tsx: `custom.hideFrom.tooltip`).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import geomap
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import geomap as geomap_model
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue

from dashboards import sql
from dashboards.config import BuildConfig
from dashboards.panels import GOOD, Panels, Step, prop, steps_json
from dashboards.units import indicator_display
from vizita.contract.indicators import INDICATORS, KINDS, Kind
from vizita.contract.targets import Targets

FIT_MAX_ZOOM = 9  # fitting the 38 seats never zooms in further than this
MARKER_SIZE = 9
NO_VALUE_COLOUR = "gray"  # no value or no target: neither good nor bad
# How far behind the target a marker turns orange, red and dark red: 5 and 10
# percentage points for shares, 5% and 10% of the target for counts and ratios.
_POINTS_STEPS: list[Step] = [(None, "dark-red"), (-10.0, "red"), (-5.0, "orange"), (0.0, GOOD)]
_SHARE_STEPS: list[Step] = [(None, "dark-red"), (-0.10, "red"), (-0.05, "orange"), (0.0, GOOD)]


def mapped_indicators(targets: Targets) -> list[str]:
    """The indicators some municipality has a target for, in the contract's order."""
    with_target = {str(name) for name in targets.defaults}
    for own in targets.municipalities.values():
        with_target |= {str(name) for name in own}
    return [indicator for indicator in INDICATORS if indicator in with_target]


def indicator_map(panels: Panels, config: BuildConfig, indicator: str) -> geomap.Panel:
    display = indicator_display(indicator)
    query = sql.map_values(config.database, config.targets, indicator)
    panel = (
        panels.geomap(f"{display.title}: against the target", query)
        .description(
            "Each municipality at its seat: its 30-day value at the latest day in range, "
            "coloured by how far it is from its own target (green: on or past it). "
            "⚑ alert raised, ▼ behind, ▽ behind with too few visits to alert; grey: no "
            "value or no target. Hover for the value, denominator and target.")
        .view(geomap.MapViewConfig().id(geomap_model.MapCenterID.FIT).all_layers(True)
              .zoom(FIT_MAX_ZOOM))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(False)
                  .show_attribution(True))
        .basemap(common_builder.MapLayerOptions().type("default").name("Basemap"))
        .layers([_markers(display.title)])
        .tooltip(geomap.TooltipOptions().mode(geomap_model.TooltipMode.DETAILS))
        .override_by_name("municipality", [prop("displayName", "Municipality")])
        .override_by_name("value", [prop("displayName", "30-day value"),
                                    prop("unit", display.unit),
                                    prop("decimals", display.decimals)])
        .override_by_name("target", [prop("displayName", "Target"), prop("unit", display.unit),
                                     prop("decimals", display.decimals)])
        .override_by_name("from_target", _from_target_field(indicator))
        .override_by_name("standing", [prop("displayName", "Standing")])
    )  # fmt: skip
    for hidden in ("latitude", "longitude", "marker"):
        panel.override_by_name(hidden, [prop("custom.hideFrom", _TOOLTIP_ONLY)])
    for count in ("numerator", "denominator"):
        panel.override_by_name(count, [prop("displayName", count.capitalize()),
                                       prop("decimals", 0)])  # fmt: skip
    return panel


_TOOLTIP_ONLY = {"tooltip": True, "legend": False, "viz": False}


def _from_target_field(indicator: str) -> list[DynamicConfigValue]:
    """The field markers take their colour from: thresholds around 0 (the target), and
    grey where there is nothing to compare."""
    if KINDS[indicator] is Kind.SHARE:
        title, unit, steps = "From the target (points)", "suffix:pp", _POINTS_STEPS
    else:
        title, unit, steps = "From the target (share of it)", "percentunit", _SHARE_STEPS
    result = {"color": NO_VALUE_COLOUR, "index": 0}
    nothing = {"type": "special", "options": {"match": "null", "result": result}}
    return [
        prop("displayName", title),
        prop("unit", unit),
        prop("decimals", 1),
        prop("thresholds", steps_json(steps)),
        prop("color", {"mode": "thresholds"}),
        prop("mappings", [nothing]),
    ]


def _markers(name: str) -> common_builder.MapLayerOptions:
    style = {
        "color": {"field": "from_target", "fixed": NO_VALUE_COLOUR},
        "size": {"fixed": MARKER_SIZE, "min": MARKER_SIZE, "max": MARKER_SIZE},
        "opacity": 0.8,
        "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
        "symbolAlign": {"horizontal": "center", "vertical": "center"},
        # The standing's marker beside the circle, so colour is never the only signal.
        "text": {"mode": "field", "field": "marker", "fixed": ""},
        "textConfig": {"fontSize": 14, "offsetX": 0, "offsetY": -14,
                       "textAlign": "center", "textBaseline": "middle"},
    }  # fmt: skip
    location = (
        common_builder.FrameGeometrySource().mode(common_model.FrameGeometrySourceMode.COORDS)
        .latitude("latitude").longitude("longitude")
    )  # fmt: skip
    return (
        common_builder.MapLayerOptions().type("markers").name(name)
        .config({"style": style, "showLegend": True}).location(location).tooltip(True)
    )  # fmt: skip
