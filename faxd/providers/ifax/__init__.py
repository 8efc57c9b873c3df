"""The iFax API (api.ifaxapp.com), as faxd uses it.

Like FAXAGE, three layers: :mod:`~faxd.providers.ifax.wire` reads the JSON
answers (pure), :mod:`~faxd.providers.ifax.client` makes the POSTs with the
retry policy and streams files both ways, :mod:`~faxd.providers.ifax.provider`
is the adapter the pipeline and hot folder see; :mod:`~faxd.providers.ifax.sim`
is the simulator the tests and the demo talk to.
"""
