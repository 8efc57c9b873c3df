"""faxd's Alembic migrations, shipped inside the package so an installed faxd can
upgrade its own database (see :meth:`faxd.store.db.Database.upgrade`)."""
