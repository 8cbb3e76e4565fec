"""conda.common.url: URL helpers, as conda-formats §1.1 / §5.2 / §7.3 describe them."""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_TOKEN = re.compile(r"/t/([a-zA-Z0-9-]*)")


def is_url(text) -> bool:
    return bool(text) and re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text) is not None


def path_to_url(path: str) -> str:
    if path.startswith("file:"):
        return path
    return Path(os.path.abspath(os.path.expanduser(path))).as_uri()


def join_url(*parts) -> str:
    start = "/" if not parts[0] else ""
    return start + "/".join(y for y in (x.strip("/") for x in parts if x) if y)


def split_anaconda_token(url: str):
    """(url without /t/TOKEN, TOKEN or None): the first occurrence (§7.3)."""
    m = _TOKEN.search(url)
    if not m:
        return url, None
    return url[: m.start()] + url[m.end():], m.group(1)


def remove_auth(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mask_anaconda_token(url: str) -> str:
    return _TOKEN.sub("/t/<TOKEN>", url, count=1)
