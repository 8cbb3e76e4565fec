"""conda.models.channel (conda-formats §1.1): str(channel) is the subdir URL
without credentials; canonical_name is the base URL (SIMPLIFIED: no
channel_alias, custom_channels or multichannels, so never a short name)."""

import os
from urllib.parse import urlsplit

from ..common.url import is_url, path_to_url, remove_auth, split_anaconda_token

KNOWN_SUBDIRS = ("noarch", "linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")


class Channel:
    def __init__(self, value: str, subdir: str = None) -> None:
        if not is_url(value):  # (c) a path becomes a file:// URL
            value = path_to_url(os.path.abspath(os.path.expanduser(value)))
        value = value.rstrip("/")
        last = value.rsplit("/", 1)[-1]
        if subdir is None and last in KNOWN_SUBDIRS:
            value, subdir = value.rsplit("/", 1)[0], last
        without_token, token = split_anaconda_token(value)
        self.token = token
        parts = urlsplit(without_token)
        self.auth = parts.netloc.rsplit("@", 1)[0] if "@" in parts.netloc else None
        self.base_url = remove_auth(without_token)  # scheme://location/name
        self.subdir = subdir
        self.name = urlsplit(self.base_url).path.strip("/")

    @property
    def canonical_name(self) -> str:
        return self.base_url

    def url(self, with_credentials: bool = False) -> str:
        base = self.base_url
        if with_credentials:
            parts = urlsplit(base)
            netloc = f"{self.auth}@{parts.netloc}" if self.auth else parts.netloc
            token = f"/t/{self.token}" if self.token else ""
            base = f"{parts.scheme}://{netloc}{token}{parts.path}"
        return f"{base}/{self.subdir}" if self.subdir else base

    def __str__(self) -> str:
        return self.url(with_credentials=False)

    def __repr__(self) -> str:
        return f"Channel({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Channel) and self.canonical_name == other.canonical_name

    def __hash__(self) -> int:
        return hash(self.canonical_name)
