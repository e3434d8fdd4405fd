"""Scrub: par2 parity that finds and repairs silent corruption. kind.py is the job kind
(model, validation, options, schedule entries).

par2.py builds par2 command lines and sizes parity; par2format.py reads PAR2 packets;
catalog.py is the per-file state kept inside DATABASE (and the rule its rows must pass),
rebuild.py recovers it from the parity files; timestamps.py says when recorded metadata
proves a file unchanged; trust.py opens DATABASE only when nobody else can write it;
guards.py checks DATABASE and the mounts before a run; layout.py says where parity lives
and which names it cannot hold; repair.py writes a repaired file back in place;
engine.py walks DIRECTORY and decides what each file needs.
"""
