"""One sub-package per reproduction; each declares ``REPRO`` in its ``__init__.py``."""
