# Flask-WTF 1.3.0: the names app/ uses (stubs/README.md says why these stubs exist).
from flask_wtf.csrf import CSRFProtect as CSRFProtect
from flask_wtf.form import FlaskForm as FlaskForm
