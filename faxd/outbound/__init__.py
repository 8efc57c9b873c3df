"""The outbound half: files dropped in the outbox become faxes sent with FAXAGE.

Entry points live in :mod:`faxd.outbound.service`: the daemon builds
:class:`~faxd.outbound.service.Outbound`; the CLI calls ``queue_files``,
``list_jobs``, ``retry_job`` and ``cancel_job`` (re-exported there from
:mod:`faxd.outbound.commands`).  The pieces: ``naming`` (file name -> number,
pure), ``tracker`` (when a file is complete), ``watcher`` (events and scans),
``intake`` (checks and job creation), ``submitter`` (sendfax, reconcile),
``follow`` (status, sent/failed folders, clear).  This package file imports
nothing, so the pure modules load without the database or watchdog.
"""
