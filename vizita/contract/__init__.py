"""The ground floor: what every part of Vizita agrees on (SPEC §1-§6).

Events and their validation, reasons, topics and their partitions, the internal
messages between the stages, municipalities, indicators and windows, targets, the
settings, the errors, logging and the display rules. Nothing here imports any other
part of the project; every other part imports from here.
"""
