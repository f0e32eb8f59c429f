"""The web app's tests, one folder per package of app/ (app/analysis's are in tests/analysis)."""
