"""The one exception type the CLI turns into a single-line error and a non-zero exit."""


class UserError(Exception):
    """Bad flags, files or configurations: the message is shown to the user as is."""
