"""verl-pdai: EPRLI (early preview + difficulty-aware intervention) for verl.

Importing this package is light: it imports neither verl nor sympy. verl components are registered by
``verl_pdai.plugin.registration``, which verl loads through the ``verl.plugins`` entry point.
"""

__version__ = "0.1.0"
