"""The citation graph built from the cards (networkx). See build.py, checks.py, draw.py."""
