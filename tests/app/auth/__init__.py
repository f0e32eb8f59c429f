"""Tests of app/auth: accounts, logins, sessions and who may reach which route."""
