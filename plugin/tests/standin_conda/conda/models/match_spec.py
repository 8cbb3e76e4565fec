"""conda.models.match_spec: only what explicit installs use (conda-formats
§3.3 last point, §5.2): MatchSpec(url, md5=, sha256=) matches channel,
subdir, name, version, build, fn, the exact url string and the given hash.
SIMPLIFIED: for solver specs see core/solve.py (name[=version[=build]])."""

from ..common.url import is_url, join_url, path_to_url
from .channel import Channel

EXTENSIONS = (".conda", ".tar.bz2")


def split_fn(fn: str):
    for ext in EXTENSIONS:
        if fn.endswith(ext):
            return tuple(fn[: -len(ext)].rsplit("-", 2))
    raise ValueError(f"not a package file name: {fn}")


class MatchSpec:
    def __init__(self, url: str, md5: str = None, sha256: str = None) -> None:
        if not is_url(url):
            url = path_to_url(url)
        self.url = url
        self.fn = url.rsplit("/", 1)[-1]
        self.name, self.version, self.build = split_fn(self.fn)
        directory = url[: -len(self.fn)].rstrip("/")
        self.channel = Channel(directory)
        self.subdir = self.channel.subdir
        self.md5 = md5
        self.sha256 = sha256

    def match(self, rec) -> bool:
        if (rec.name, rec.version, rec.build, rec.fn) != (self.name, self.version, self.build, self.fn):
            return False
        if rec.url != self.url:
            return False
        if self.md5 and rec.md5 != self.md5:
            return False
        if self.sha256 and rec.sha256 != self.sha256:
            return False
        return True

    def __repr__(self) -> str:
        return f"MatchSpec({self.fn})"


__all__ = ["MatchSpec", "join_url"]
