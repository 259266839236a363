"""joulebench: LLM-inference energy-efficiency experiments on Slurm and laptops.

The notebook-facing API lives in :mod:`joulebench.api`; importing this package stays
cheap (no torch) so the CLI answers ``--help`` quickly.
"""

__version__ = "0.1.0"
