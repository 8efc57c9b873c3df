"""faxnummer.de (Portunity webrequests): sending only, since its API has no receive functions."""
