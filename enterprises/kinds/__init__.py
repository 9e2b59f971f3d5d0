"""Account kinds as data (issue 15, item 1; docs/account_kinds.md): industry, energy
producers, buildings, road transport, agriculture and resident households, each with its
activity schema, accounting method, intensity denominator and grading rule in
``enterprises/account_kinds.json``; a method per module in ``enterprises.kinds.methods``.

- ``registry``: the file loaded and checked, the generic validation, denominator, grading;
- ``service``: an enterprise's kind accounts per year (validated, accounted under the
  programme's factor basis, stored with their result);
- ``repository``: their SQL (``enterprise_kind_accounts``, the enterprise's ``kind``).
"""
