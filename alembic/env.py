"""Entry point for the `alembic` command line run from the repository root.

The migration scripts ship inside the package (``faxd/store/migrations``) so an
installed faxd can migrate its own database (``faxd db upgrade``, and the
daemon on start).  This folder only lets ``alembic upgrade head``,
``alembic history`` and ``alembic revision`` work from a checkout; it runs the
package's ``env.py`` so both paths share one configuration.
"""

import runpy

runpy.run_module("faxd.store.migrations.env", run_name="alembic_env")
