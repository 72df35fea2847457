"""The ``matteralign`` command line: one module per command group, mirroring the Python API."""
