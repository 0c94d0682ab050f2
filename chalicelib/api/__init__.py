"""The investigator's view: a read-only REST API (routes in app.py) and the web page over it.

`chalicelib.wiring.build_investigator(settings)` opens the stores the settings name, for reading.
"""

from __future__ import annotations

from chalicelib.api.params import ParameterError
from chalicelib.api.service import Investigator, NotFound, Unavailable

__all__ = ["Investigator", "NotFound", "ParameterError", "Unavailable"]
