"""The one exception type the command line turns into a clear message instead of a traceback."""


class PipelineError(Exception):
    """A problem with the user's input (files, paths, options), reported in one message."""
