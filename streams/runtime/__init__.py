"""Faust, in one place: the app and its consumer fixes, the durable tables, the two
stages' agents, and `Streams`, the facade the runner starts, watches and stops.
The maths the agents call is in the pure modules of `streams`."""
