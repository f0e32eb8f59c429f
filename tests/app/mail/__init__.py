"""Tests of app/mail: the outbox, its sender and the reminders."""
