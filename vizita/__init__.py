"""Vizita: live monitoring of a maternal and child home visiting programme.

Two floors live in this package: `vizita.contract` (the ground: what every part agrees
on) and `vizita.app` (the roof: the command line and what it runs). `vizita.kafka`,
the Kafka admin helpers, stands on the contract. `producers`, `streams`, `sinks` and
`dashboards` stand between the floors.
"""
