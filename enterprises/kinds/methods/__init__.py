"""The account kinds' methods, one module per method, named by ``account_kinds.json``'s
``method``. A method module defines ``account(activity, factors) -> Emissions`` (pure: no
clock, no store) and ``REQUIRES``, the fields it reads that the kind's schema must have.
``common`` holds their shared lines (grid electricity, fuels); it is no method."""
