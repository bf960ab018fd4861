"""User-facing errors: the CLI prints their message as one line on stderr and exits non-zero."""


class ProbeError(Exception):
    """An error caused by the user's input or environment, with a message that says where."""


class DataFileError(ProbeError):
    """A prompt, questionnaire or baseline file that does not validate."""

    def __init__(self, path, detail: str, line: int | None = None, field: str | None = None):
        where = f"{path}" + (f":{line}" if line else "")
        what = f" field '{field}'" if field else ""
        super().__init__(f"{where}:{what} {detail}".replace(": ", ": ", 1))
        self.path, self.line, self.field, self.detail = path, line, field, detail
