#!/bin/sh
# Container start: bring the database schema up to date, then hand the process over to gunicorn
# (exec, so gunicorn receives the container's stop signal directly).
set -eu
flask db upgrade
exec gunicorn -c gunicorn.conf.py wsgi:app
