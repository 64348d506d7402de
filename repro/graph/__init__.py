"""The citation graph of the knowledge base: built from the cards, checked, analysed, drawn.

Modules:
  build    ``build_graph(kb)``: a networkx ``MultiDiGraph``, one node per card, typed edges
  checks   ``run_checks(kb)``: dangling references, citations of later papers, cycles, loners
  analyse  statistics, PageRank, citation chains, lineage (what ``repro graph`` prints)
  export   ``write_exports(G, out_dir)``: node-link JSON and GraphML
  draw     build-time SVG: the whole graph, one card's neighbourhood, a home-page miniature
  cli      ``repro graph stats | path | lineage | export | bench``
  synthetic  made-up knowledge bases of any size, for ``repro graph bench``

Why this lives inside the ``repro`` package (``repro/graph/``) and not in a top-level
``graph/`` folder mapped onto ``repro.graph`` with a setuptools package-dir entry: a mapping
works for a regular install but not from a plain checkout (``python -m repro`` or pytest
without installing), and editable installs of remapped folders go through import hooks that
differ between setuptools versions. A sub-package has one import path, ``repro.graph``, in
all three cases, and nothing called plain ``graph`` can land in site-packages.

Nothing here imports torch (``repro check`` runs the checks and must stay fast). networkx is
imported inside the functions that need it, so importing ``repro.graph`` costs nothing.
"""
