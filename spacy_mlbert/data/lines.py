"""Reading a text file line by line, with line numbers, for every input format.

The file is read as bytes and each line is decoded on its own, so that

- invalid UTF-8 is reported with its line, and with skip_invalid only that line
  is lost;
- lines split at ``\\n`` only: U+2028, U+0085 and other characters that
  ``str.splitlines`` treats as line breaks stay inside the text;
- a UTF-8 byte order mark at the start of the file is accepted and stripped;
- CRLF line endings are accepted (the ending is kept apart from the text).
"""
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from tqdm import tqdm

from .records import PathLike

logger = logging.getLogger("spacy_mlbert")

BOM = b"\xef\xbb\xbf"
# Show a progress bar only for files where it is worth it.
PROGRESS_MIN_BYTES = 1 << 20


@dataclass
class Line:
    """One line of a file.

    number (int): 1-based line number.
    text (str): the decoded line without its line ending.
    ending (str): "\\n", "\\r\\n" or "" (last line without a newline).
    error (Optional[str]): why the bytes are not valid UTF-8, if they are not;
        ``text`` then holds the line decoded with replacement characters.
    """

    number: int
    text: str
    ending: str
    error: Optional[str] = None

    @property
    def raw(self) -> str:
        """RETURNS (str): the text with its line ending, as the csv module wants it."""
        return self.text + self.ending

    @property
    def is_blank(self) -> bool:
        """RETURNS (bool): whether the line holds nothing but whitespace."""
        return not self.text.strip()


def iter_lines(path: PathLike, *, progress: bool = False) -> Iterator[Line]:
    """Yield the lines of a file, decoded one by one.

    path (PathLike): the file.
    progress (bool): show a tqdm progress bar, if the file is large (1 MiB or
        more) and stderr is a terminal.
    YIELDS (Line): the lines in order.
    """
    path = Path(path)
    size = path.stat().st_size
    show = progress and size >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    with path.open("rb") as file_, tqdm(
        total=size, unit="B", unit_scale=True, desc=path.name, disable=not show, leave=False
    ) as bar:
        for number, raw in enumerate(file_, start=1):
            bar.update(len(raw))
            if number == 1 and raw.startswith(BOM):
                logger.debug("%s: stripped the UTF-8 byte order mark", path)
                raw = raw[len(BOM):]
                if not raw:  # nothing but the mark: no line at all
                    return
            if raw.endswith(b"\r\n"):
                body, ending = raw[:-2], "\r\n"
            elif raw.endswith(b"\n"):
                body, ending = raw[:-1], "\n"
            else:
                body, ending = raw, ""
            try:
                line = Line(number, body.decode("utf-8"), ending)
            except UnicodeDecodeError as err:
                bad = body[err.start:err.end]
                detail = f"byte(s) {bad.hex(' ')} at byte {err.start + 1} of the line: {err.reason}"
                line = Line(number, body.decode("utf-8", errors="replace"), ending, error=detail)
            yield line
