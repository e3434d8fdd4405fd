"""Scrub: par2 parity that finds and repairs silent corruption. kind.py is the job kind
(model, validation, options, schedule entries).

par2.py builds par2 command lines and sizes parity; par2format.py reads PAR2 packets;
catalog.py is the per-file state kept inside DATABASE, rebuild.py recovers it from the
parity files; timestamps.py says when recorded metadata proves a file unchanged; repair.py
puts a repaired file back safely; guards.py checks DATABASE and the mounts before a run;
engine.py walks DIRECTORY and decides what each file needs.
"""
