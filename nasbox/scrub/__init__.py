"""Scrub: par2 parity that finds and repairs silent corruption (CONTRACT 4).

par2.py builds par2 command lines and sizes parity; par2format.py reads PAR2 packets;
catalog.py is the per-file state kept inside DATABASE; repair.py puts a repaired file back
safely; engine.py walks DIRECTORY and decides what each file needs.
"""
