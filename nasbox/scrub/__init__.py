"""Scrub: par2 parity that finds and repairs silent corruption. kind.py is the job kind
(model, validation, options, schedule entries).

One run: engine.py is the run step by step (guards, lock, catalog, recovery, walk, sets,
removal, result); walk.py lists DIRECTORY and decides what each file needs; sets.py packs
the files that need parity into shared parity sets and says where sets live; tasks.py feeds
the worker threads, and work.py holds what they do (read files against their rows, make a
set, check a set's parity, repair); readers.py reads many small files in worker processes;
install.py puts sets in place, removes those no file needs and finishes what a killed run
left; report.py keeps the counters and detail lines and makes the status and summary;
files.py reaches DIRECTORY's files through descriptors.

What a run relies on: guards.py checks DATABASE and the mounts before a run; trust.py opens
DATABASE only when nobody else can write it; catalog.py is the per-file and per-set state
kept inside DATABASE (and the rule its rows must pass), rebuild.py recovers it from the
parity files; timestamps.py says when recorded metadata proves a file unchanged; layout.py
says which names parity cannot be given; par2.py builds par2 command lines and sizes a large
file's set; par2format.py reads PAR2 packets; repair.py writes repaired files back in place,
blockfix.py rebuilds a few damaged slices of a large file from one read.
"""
