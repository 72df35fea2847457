"""matteralign: do machine-learning models of matter learn the same representation?

Datasets of molecules, materials and proteins → model embeddings → alignment metrics → reports.
"""

from __future__ import annotations

__version__ = "0.1.0"
