"""What an e-mail address must be for this app to store it and send to it.

Addresses that the app will write to (invitations, new accounts) are checked where they come
in, with email-validator, and stored bare and normalised, so that the mailer sends to exactly
the stored address. A loose pattern used to store `x@evil.example,foo` (delivered to
x@evil.example) and `=HYPERLINK("http://evil")@rt.test` (delivered to =hyperlink@rt.test
under a display name), and `ω@rt.test`, which failed for good only at send time.
"""

from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS = 254  # RFC 5321's limit, and the width of the e-mail columns
# Flask-Mail writes a non-ASCII part before the @ as an RFC 2047 encoded word, which no
# server delivers; it would need SMTPUTF8 on every hop. Such addresses are refused at input.
SMTPUTF8 = False


class AddressError(ValueError):
    """Not an address this app can send to; the message says why (one sentence)."""


def pasted_entry(text: str) -> str:
    """One entry of a pasted list, without the comma or semicolon that separated it."""
    return text.strip().rstrip(",;").rstrip()


def deliverable_address(text: str) -> str:
    """The bare, normalised (lower-case) address in `text`, which may be `Name <address>`.

    AddressError if it is not one address this app can deliver to. No DNS look-up: the
    domain's mail servers are not asked (the app may run where DNS is not reachable).
    """
    if len(text) > 2 * MAX_ADDRESS:
        raise AddressError("It is too long to be an e-mail address.")
    try:
        valid = validate_email(
            text,
            allow_display_name=True,  # "Jane Doe <jane@hospital.org>", as mail programs copy
            allow_smtputf8=True,  # checked below, with a message that says what to do
            check_deliverability=False,
            test_environment=True,  # name@site.test: staging and walk-throughs
        )
    except EmailNotValidError as problem:
        raise AddressError(str(problem)) from None
    if not SMTPUTF8 and not valid.local_part.isascii():
        raise AddressError(
            "This server's e-mail cannot deliver to letters outside ASCII before the @: "
            "ask for another address."
        )
    address = valid.normalized.lower()
    if len(address) > MAX_ADDRESS:
        raise AddressError(f"It is longer than {MAX_ADDRESS} characters.")
    return address
