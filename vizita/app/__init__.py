"""The roof: the `vizita` command and what it runs (the pipeline runner, replay, the
demo, the report, the terminal views), and the local Kafka broker for development.
Everything below may be imported here; nothing below imports from here.
"""
