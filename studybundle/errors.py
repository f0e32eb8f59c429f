"""The one error a bundle check raises, and the list that collects its problems."""

MAX_REPORTED = 10  # problems named in one message; the rest are counted


class BundleError(ValueError):
    """A bundle is not valid; the message lists the problems found (one line)."""


class Problems(list[str]):
    """Violations collected while checking, so that one message can name all of them."""

    def add(self, problem: BundleError | str) -> None:
        """Record one problem (without its final full stop)."""
        self.append(str(problem).rstrip("."))

    def raise_if_any(self, error: type[BundleError] = BundleError) -> None:
        """Raise one `error` naming the problems (the first ten, then how many more)."""
        if self:
            shown = "; ".join(self[:MAX_REPORTED])
            more = f" (and {len(self) - MAX_REPORTED} more)" if len(self) > MAX_REPORTED else ""
            raise error(f"{shown}{more}.")
