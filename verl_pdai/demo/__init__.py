"""``verl-pdai demo``: the whole EPRLI path through verl's own classes on CPU, with a tiny taught model.

See docs/demo.md. Heavy imports (torch, verl, ray) happen inside the command, never at package import.
"""
