"""The fax providers faxd speaks to, each behind one interface (:mod:`faxd.providers.base`).

Each provider is a package with a pure ``wire`` module, a ``client`` over HTTP and
an adapter that implements the interface; the pipeline and the hot folder see
only the interface, remote ids as strings, and the :mod:`faxd.errors` tree.
"""
