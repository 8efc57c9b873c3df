"""Delivery actions: the ways a routed fax leaves faxd (folder, print, email, command).

:func:`build_action` turns a route's action spec into an object with one
``deliver()``; see :mod:`faxd.actions.base` for the contract they share.
"""

from __future__ import annotations

from faxd.actions.base import Action, Deliverable, build_action

__all__ = ["Action", "Deliverable", "build_action"]
