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


def pasted_entries(line: str) -> list[str]:
    """The entries of one pasted line, as mail programs copy several recipients: split at the
    commas and semicolons outside quotes and <...> ("Jane <j@x.org>; Bob <b@y.org>").

    A piece without an @ followed by one with a <...> is the surname of a display name
    written without quotes ("Doe, Jane <jane@x.org>") and stays with it. Anything else
    stays a piece of its own, which the address check then refuses (`x@evil.example,foo`).
    """
    pieces: list[str] = []
    current: list[str] = []  # the characters of the piece being read
    quoted = angled = False
    for char in line:
        if char == '"' and not angled:
            quoted = not quoted
        elif char == "<" and not quoted:
            angled = True
        elif char == ">" and not quoted:
            angled = False
        if char in ",;" and not (quoted or angled):
            pieces.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    pieces.append("".join(current).strip())
    entries: list[str] = []
    for piece in pieces:
        if entries and "<" in piece and "@" not in entries[-1] and "<" not in entries[-1]:
            given, _, address = piece.partition("<")
            entries[-1] = f'"{entries[-1]}, {given.strip()}" <{address}'  # quoted, as it must be
        elif piece:
            entries.append(piece)
    return entries


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
