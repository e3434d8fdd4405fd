"""Scrub: par2 parity that finds and repairs silent corruption. kind.py is the job kind
(model, validation, options, schedule entries).

One run: engine.py is the run step by step (guards, lock, catalog, recovery, walk, removal,
result); walk.py lists DIRECTORY and decides what each file needs; work.py holds the tasks
the worker threads run on one file (create, verify, check a copy, reconcile, repair);
install.py puts parity in place under a journal, removes the parity of files that are gone
and finishes what a killed run left; report.py keeps the counters and detail lines and
makes the status and summary; files.py reaches DIRECTORY's files through descriptors.

What a run relies on: guards.py checks DATABASE and the mounts before a run; trust.py opens
DATABASE only when nobody else can write it; catalog.py is the per-file state kept inside
DATABASE (and the rule its rows must pass), rebuild.py recovers it from the parity files;
timestamps.py says when recorded metadata proves a file unchanged; layout.py says where
parity lives and which names it cannot hold; par2.py builds par2 command lines and sizes
parity; par2format.py reads PAR2 packets; repair.py writes a repaired file back in place.
"""
