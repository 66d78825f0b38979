"""A graph model of both designs: the experiments' questions answered from the graph alone.

Pure Python on networkx, no root, milliseconds: who loses what when something fails
(``reachability``), what admission adds to a first connection (``latency``), what a
censorship action stops and which evasions get through (``censorship``). Tests hold the
emulator's results against it on real graphs; the study draws it beside every measured point;
and it answers at sizes no machine can emulate.
"""
