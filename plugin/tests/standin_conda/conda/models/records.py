"""conda.models.records (conda-formats §1.3, conda-plugin.md §3): the
attributes the plugin reads, dump(), and the identity _pkey =
(channel.canonical_name, subdir, name, version, build_number, build)."""

import os

from .channel import Channel

FIELDS = ("name", "version", "build", "build_number", "depends", "constrains", "subdir", "md5",
          "sha256", "size", "legacy_bz2_md5", "legacy_bz2_size", "timestamp", "noarch", "license",
          "track_features", "features", "arch", "platform", "fn", "url")


class PackageRecord:
    def __init__(self, **kw) -> None:
        for f in FIELDS:
            setattr(self, f, kw.get(f))
        self.build_number = int(self.build_number or 0)
        self.depends = list(self.depends or [])
        self.constrains = list(self.constrains or [])
        ts = self.timestamp
        if isinstance(ts, (int, float)) and ts > 253402300799:  # §1.3: ms above this
            self.timestamp = ts / 1000
        ch = kw.get("channel")
        self.channel = ch if isinstance(ch, Channel) else Channel(ch) if ch else None
        if self.channel is not None and self.channel.subdir is None:
            self.channel.subdir = self.subdir

    @property
    def _pkey(self):
        canonical = self.channel.canonical_name if self.channel is not None else None
        return (canonical, self.subdir, self.name, self.version, self.build_number, self.build)

    def __eq__(self, other) -> bool:
        return isinstance(other, PackageRecord) and self._pkey == other._pkey

    def __hash__(self) -> int:
        return hash(self._pkey)

    @property
    def dist_name(self) -> str:
        return f"{self.name}-{self.version}-{self.build}"

    def dump(self) -> dict:
        """A JSON-ready dict of every set field; timestamp in ms; channel =
        the subdir URL (§6)."""
        out = {}
        for f in FIELDS:
            v = getattr(self, f)
            if v is None or (f in ("track_features", "features") and not v):
                continue
            out[f] = v
        if self.timestamp is not None:
            out["timestamp"] = int(self.timestamp * 1000)
        if self.channel is not None:
            out["channel"] = str(self.channel)
        return out

    def dist_fields_dump(self) -> dict:
        """LINK / UNLINK entries of --json (§6)."""
        return {"base_url": self.channel.base_url if self.channel else None,
                "build_number": self.build_number, "build_string": self.build,
                "channel": self.channel.name if self.channel else None, "dist_name": self.dist_name,
                "name": self.name, "platform": self.subdir, "version": self.version}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.channel}::{self.dist_name})"


class PackageCacheRecord(PackageRecord):
    """A package cache entry (§3.2): extracted folder and/or archive."""

    def __init__(self, *, extracted_package_dir=None, package_tarball_full_path=None, **kw) -> None:
        super().__init__(**kw)
        self.extracted_package_dir = extracted_package_dir
        self.package_tarball_full_path = package_tarball_full_path

    @property
    def is_extracted(self) -> bool:
        d = self.extracted_package_dir
        return bool(d) and os.path.isfile(os.path.join(d, "info", "index.json"))

    @property
    def is_fetched(self) -> bool:
        p = self.package_tarball_full_path
        return bool(p) and os.path.isfile(p)


class PrefixRecord(PackageRecord):
    """An installed package (conda-meta/NAME-VERSION-BUILD.json, §4.1)."""

    def __init__(self, *, files=(), meta_path=None, **kw) -> None:
        super().__init__(**kw)
        self.files = list(files)
        self.meta_path = meta_path
