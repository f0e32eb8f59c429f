"""Tests of the organiser's side: studies, designs, teams, invitations, imports, exports and
the dashboard."""
