"""Government: the programme's reports (rollups, disclosure control, exports, scenarios), its
government users and the administrative audit log (issue 14)."""
