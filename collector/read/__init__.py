"""The read side of the state store, one module per API resource (mirroring the routers in
``collector/api/``): :mod:`.summary`, :mod:`.org`, :mod:`.schools`, :mod:`.devices`, and
:mod:`.scope` (what a caller may see).

Every function takes a ``scope`` (see :mod:`.scope`): objects outside it are reported as not
found (None), exactly like objects that do not exist, so a caller cannot learn which codes
exist elsewhere. Times are returned as UTC epoch seconds (as stored); the API renders them.
Statuses are codes (``online``, ``offline``, ``partial``, ``no_devices``, ``pending``...); the
API adds labels. Nothing here invents a number it does not have: before the ATTT or the
connectivity evaluator first judged the schools, that baseline's counts are ``None``.
"""
from .scope import QueryError, Scope, resolve_scope

__all__ = ["QueryError", "Scope", "resolve_scope"]
