"""The outbound half: files dropped in the outbox become faxes sent with the configured provider.

Entry points live in :mod:`faxd.outbound.service`: the daemon builds
:class:`~faxd.outbound.service.Outbound`; the CLI calls ``queue_files``,
``list_jobs``, ``retry_job`` and ``cancel_job`` (re-exported there from
:mod:`faxd.outbound.commands`).  The pieces: ``naming`` (file name -> number,
pure), ``tracker`` (when a file is complete), ``watcher`` (events and scans),
``intake`` (checks and job creation), ``sendable`` (conversion to a type the
provider takes), ``submitter`` (send, reconcile), ``follow`` (status,
sent/failed folders, forget), ``numbers`` (provider labels, number matching).
The provider is a :class:`~faxd.providers.base.OutboundProvider`.  This
package file imports nothing, so the pure modules load without the database
or watchdog.
"""
