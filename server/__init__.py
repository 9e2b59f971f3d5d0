"""Composition root: the app factory, settings, stores, auth, errors, CLI, migrations, worker."""
