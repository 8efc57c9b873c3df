"""faxd's HTTP listener: provider callbacks, ``/healthz``, ``/metrics`` (DESIGN "HTTP listener")."""
