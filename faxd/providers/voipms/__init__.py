"""The VoIP.ms fax API, as faxd uses it.

Three layers, like FAXAGE's: :mod:`~faxd.providers.voipms.wire` turns JSON
answers into records and errors (pure), :mod:`~faxd.providers.voipms.transport`
moves bytes over HTTP and decodes the base64 download as it streams in, and
:mod:`~faxd.providers.voipms.client` offers one method per API method with the
retry policy.  :mod:`~faxd.providers.voipms.provider` puts them behind
:mod:`faxd.providers.base`; :mod:`~faxd.providers.voipms.sim` is the simulator.
"""
