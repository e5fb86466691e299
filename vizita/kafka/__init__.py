"""Kafka administration the pipeline needs at run time: topics, offsets, a probe.

It stands on the contract and under everything that talks to Kafka; the local broker
launcher for development and tests is `vizita.app.broker`.
"""
