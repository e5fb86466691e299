"""Grafana dashboards and alert rules as code.

`build.build_all` makes the four dashboards and the alerting provisioning file from
the settings and `config/targets.yaml`; `vizita dashboards build` writes them to
`config/grafana/`, `vizita dashboards push` sends the dashboards to a Grafana.
Every panel query is run against a real store by tests/integration/test_dashboards.py.
"""
