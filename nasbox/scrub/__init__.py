"""Scrub: par2 parity that finds and repairs silent corruption (CONTRACT 4).

par2.py builds par2 command lines and sizes parity; par2format.py reads PAR2 packets;
catalog.py is the per-file state kept inside DATABASE (and the rule its rows must pass);
trust.py opens DATABASE only when nobody else can write it; layout.py says where parity
lives and which names it cannot hold; repair.py writes a repaired file back in place;
engine.py walks DIRECTORY and decides what each file needs.
"""
