"""Enterprise carbon accounts (issue 12): the enterprise registry so far."""
