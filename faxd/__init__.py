"""faxd: a fax server daemon for office Linux boxes, backed by FAXAGE.

Importing the package is kept cheap (no third-party imports here) so that
``faxd --help`` answers quickly; each subcommand imports what it needs.
"""

__version__ = "0.1.0"
