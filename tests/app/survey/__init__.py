"""Tests of app/survey: the reader's way through a study."""
