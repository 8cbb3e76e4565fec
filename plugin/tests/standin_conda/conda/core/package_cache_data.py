"""conda.core.package_cache_data (conda-formats §2.4, §2.5, §3): the package
cache, the reuse rules of §3.3 and the fetch / extract actions."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from itertools import chain

from ..base.context import context
from ..common.url import path_to_url
from ..exceptions import ChecksumMismatchError, CondaError, CondaHTTPError, SafetyError
from ..models.match_spec import MatchSpec
from ..models.records import PackageCacheRecord

EXTENSIONS = (".conda", ".tar.bz2")
URLS_TXT = "urls.txt"


def strip_ext(fn: str) -> str:
    for ext in EXTENSIONS:
        if fn.endswith(ext):
            return fn[: -len(ext)]
    return fn


def file_hashes(path: str):
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest(), os.path.getsize(path)


def _read_json(path: str):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------
# Extraction (§2.5): the target folder is removed first; every member must
# stay inside it; .conda = pkg-STEM.tar.zst then info-STEM.tar.zst, found by
# the archive's own file name.

def _safe_extract(tar: tarfile.TarFile, dest: str) -> None:
    real_dest = os.path.realpath(dest)
    for member in tar:
        target = os.path.realpath(os.path.join(dest, member.name))
        if target != real_dest and not target.startswith(real_dest + os.sep):
            raise SafetyError(f"contains unsafe path: {member.name}")
        if member.isdev():
            continue
        tar.extract(member, dest, set_attrs=not member.issym())


def _zstd_decompress(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-d", "-q", "-c"], input=data, stdout=subprocess.PIPE,
                          check=True, timeout=600).stdout


def extract_tarball(archive: str, dest: str) -> None:
    if os.path.lexists(dest):
        shutil.rmtree(dest) if os.path.isdir(dest) and not os.path.islink(dest) else os.unlink(dest)
    os.makedirs(dest)
    fn = os.path.basename(archive)
    if fn.endswith(".tar.bz2"):
        with tarfile.open(archive, "r|bz2") as tar:
            _safe_extract(tar, dest)
        return
    stem = strip_ext(fn)
    with zipfile.ZipFile(archive) as z:
        for component in ("pkg", "info"):
            names = [n for n in z.namelist() if n.startswith(f"{component}-{stem}")]
            if len(names) != 1:
                raise LookupError(f"{fn}: no single {component}-{stem} member")
            data = _zstd_decompress(z.read(names[0]))
            with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
                _safe_extract(tar, dest)


def index_json_of_archive(archive: str) -> dict:
    """info/index.json read from an archive that was not extracted."""
    if archive.endswith(".tar.bz2"):
        with tarfile.open(archive, "r:bz2") as tar:
            return json.load(tar.extractfile("info/index.json"))
    stem = strip_ext(os.path.basename(archive))
    with zipfile.ZipFile(archive) as z:
        data = _zstd_decompress(z.read(f"info-{stem}.tar.zst"))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return json.load(tar.extractfile("info/index.json"))


# ---------------------------------------------------------------------------


class PackageCacheData:
    _cache_: dict = {}

    def __new__(cls, pkgs_dir: str):
        if pkgs_dir in cls._cache_:
            return cls._cache_[pkgs_dir]
        self = super().__new__(cls)
        self.pkgs_dir = pkgs_dir
        self.__records = None
        cls._cache_[pkgs_dir] = self
        return self

    @classmethod
    def clear(cls) -> None:
        """Forget every scan (conda-plugin.md §4: required after a fill)."""
        cls._cache_.clear()

    # -- §3.1: a folder is a cache only if it holds urls.txt; writable if
    # urls.txt can be opened for append.
    @property
    def is_writable(self):
        path = os.path.join(self.pkgs_dir, URLS_TXT)
        if not os.path.isfile(path):
            return None
        try:
            with open(path, "a"):
                return True
        except OSError:
            return False

    @classmethod
    def first_writable(cls, pkgs_dirs=None) -> "PackageCacheData":
        """The first cache that is writable or can be made (made when it is
        written to: CacheUrlAction)."""
        for d in pkgs_dirs or context.pkgs_dirs:
            pcd = cls(d)
            if pcd.is_writable:
                return pcd
            if pcd.is_writable is None:
                probe = d
                while not os.path.exists(probe):
                    probe = os.path.dirname(probe)
                if os.path.isdir(probe) and os.access(probe, os.W_OK):
                    return pcd
        raise CondaError(f"No writeable pkgs directories configured: {list(pkgs_dirs or context.pkgs_dirs)}")

    @classmethod
    def all_caches_writable_first(cls, pkgs_dirs=None):
        caches = [cls(d) for d in pkgs_dirs or context.pkgs_dirs]
        return [c for c in caches if c.is_writable] + [c for c in caches if not c.is_writable]

    def urls(self) -> list:
        """urls.txt lines, newest first (§3.2)."""
        try:
            with open(os.path.join(self.pkgs_dir, URLS_TXT)) as f:
                return [line.strip() for line in reversed(f.readlines()) if line.strip()]
        except OSError:
            return []

    def get_url(self, fn: str):
        return next((u for u in self.urls() if u.rsplit("/", 1)[-1] == fn), None)

    # -- §3.2 scanning: a top-level folder (any name, dot-names included, no
    # symlinks) holding info/index.json is a package; so is an archive.
    # Several folders claiming one package: the last one scanned wins, and
    # the folder named like the package is scanned first (seen: a leftover
    # .tmp-x/ and a renamed NAME-1.0-0.old/ were linked instead of the fresh
    # folder, conda-plugin.md §4; conda's own order is the directory's).
    def _load(self) -> dict:
        records: dict = {}
        if self.is_writable is None:
            return records
        entries = []
        names = set(os.listdir(self.pkgs_dir))
        for name in sorted(names):
            path = os.path.join(self.pkgs_dir, name)
            if os.path.islink(path):
                continue
            if os.path.isdir(path) and os.path.isfile(os.path.join(path, "info", "index.json")):
                rec = self._folder_record(path, names)
            elif name.endswith(EXTENSIONS) and os.path.isfile(path) and strip_ext(name) not in names:
                if name.endswith(".tar.bz2") and strip_ext(name) + ".conda" in names:
                    continue  # .conda preferred
                rec = self._archive_record(path)
            else:
                continue
            if rec is not None:
                entries.append((name != rec.dist_name, name, rec))
        for _, _, rec in sorted(entries, key=lambda e: (e[0], e[1])):
            records[rec] = rec  # an equal key keeps its place, the value is replaced
        return records

    def _folder_record(self, path: str, names: set):
        stem = os.path.basename(path)
        tarball = next((os.path.join(self.pkgs_dir, stem + e) for e in EXTENSIONS
                        if stem + e in names), None)
        try:
            data = _read_json(os.path.join(path, "info", "repodata_record.json"))
        except (OSError, ValueError):
            try:
                data = _read_json(os.path.join(path, "info", "index.json"))
            except (OSError, ValueError):
                return None
            fn = os.path.basename(tarball) if tarball else stem + ".tar.bz2"
            data["fn"] = fn
            data["url"] = self.get_url(fn)
            if tarball:
                data["md5"], data["sha256"], data["size"] = file_hashes(tarball)
            if data.get("url"):
                data.setdefault("channel", data["url"].rsplit("/", 1)[0])
            if self.is_writable:
                with open(os.path.join(path, "info", "repodata_record.json"), "w") as f:
                    json.dump(data, f, indent=2, sort_keys=True)
        return PackageCacheRecord(extracted_package_dir=path, package_tarball_full_path=tarball, **data)

    def _archive_record(self, path: str):
        """SIMPLIFIED: conda extracts such an archive during the scan; the
        stand-in reads its info/index.json and extracts it when it is used."""
        try:
            data = index_json_of_archive(path)
        except Exception:
            return None
        fn = os.path.basename(path)
        data["fn"] = fn
        data["url"] = self.get_url(fn)
        data["md5"], data["sha256"], data["size"] = file_hashes(path)
        if data.get("url"):
            data["channel"] = data["url"].rsplit("/", 1)[0]
        return PackageCacheRecord(package_tarball_full_path=path,
                                  extracted_package_dir=os.path.join(self.pkgs_dir, strip_ext(fn)), **data)

    @property
    def _package_cache_records(self) -> dict:
        if self.__records is None:
            self.__records = self._load()
        return self.__records

    def query(self, ref):
        if isinstance(ref, MatchSpec):
            return [r for r in self._package_cache_records.values() if ref.match(r)]
        return [r for r in self._package_cache_records.values() if r == ref]

    @classmethod
    def query_all(cls, ref, pkgs_dirs=None):
        return list(chain.from_iterable(c.query(ref) for c in cls.all_caches_writable_first(pkgs_dirs)))

    @classmethod
    def get_entry_to_link(cls, ref) -> PackageCacheRecord:
        entry = next((r for r in cls.query_all(ref) if r.is_extracted), None)
        if entry is not None:
            return entry
        dist = f"{ref.name}-{ref.version}-{ref.build}"
        for cache in cls.all_caches_writable_first():
            for r in cache._package_cache_records.values():
                if r.dist_name == dist and r.is_extracted:
                    return r
        raise CondaError(f"No package '{dist}' found in cache directories.")


def pcrec_matches(pcrec, ref) -> bool:
    """§3.3: size in {size, legacy_bz2_size} and md5 in {md5, legacy_bz2_md5}
    when both sides have them; sha256 is NOT compared."""
    size, md5 = getattr(ref, "size", None), getattr(ref, "md5", None)
    if size and pcrec.size and pcrec.size not in (size, getattr(ref, "legacy_bz2_size", None)):
        return False
    if md5 and pcrec.md5 and pcrec.md5 not in (md5, getattr(ref, "legacy_bz2_md5", None)):
        return False
    return True


class CacheUrlAction:
    """§2.4: download to FN.partial, check sha256 (else md5) and size, rename,
    append the URL to urls.txt. file:// URLs are copied without any check."""

    def __init__(self, url, target_pkgs_dir, target_fn, sha256=None, md5=None, size=None):
        self.url, self.target_pkgs_dir, self.target_fn = url, target_pkgs_dir, target_fn
        self.sha256, self.md5, self.size = sha256, md5, size

    @property
    def target(self) -> str:
        return os.path.join(self.target_pkgs_dir, self.target_fn)

    def execute(self) -> None:
        os.makedirs(self.target_pkgs_dir, exist_ok=True)
        open(os.path.join(self.target_pkgs_dir, URLS_TXT), "a").close()
        if self.url.startswith("file://"):
            from urllib.parse import unquote, urlsplit

            shutil.copyfile(unquote(urlsplit(self.url).path), self.target)
        else:
            partial = self.target + ".partial"
            try:
                with urllib.request.urlopen(self.url, timeout=60) as r, open(partial, "wb") as f:
                    shutil.copyfileobj(r, f)
            except OSError as e:
                if os.path.exists(partial):
                    os.unlink(partial)
                raise CondaHTTPError(f"HTTP error fetching {self.target_fn}: {e}") from None
            md5, sha, size = file_hashes(partial)
            bad = (self.sha256 and sha != self.sha256) or (not self.sha256 and self.md5 and md5 != self.md5) \
                or (self.size and size != self.size)
            if bad:
                os.unlink(partial)
                raise ChecksumMismatchError(f"Conda detected a mismatch between the expected content and "
                                            f"downloaded content for url '{self.url}'.")
            os.replace(partial, self.target)
        with open(os.path.join(self.target_pkgs_dir, URLS_TXT), "a") as f:
            f.write(self.url + "\n")


class ExtractPackageAction:
    """§2.5: extract, read info/index.json, write info/repodata_record.json
    (index.json overlaid with the record; the record wins)."""

    def __init__(self, source_full_path, target_pkgs_dir, target_extracted_dirname, record_or_spec):
        self.source_full_path = source_full_path
        self.target_full_path = os.path.join(target_pkgs_dir, target_extracted_dirname)
        self.record_or_spec = record_or_spec

    def execute(self) -> None:
        extract_tarball(self.source_full_path, self.target_full_path)
        try:
            index = _read_json(os.path.join(self.target_full_path, "info", "index.json"))
        except (OSError, ValueError):
            print(f"Encountered corrupt package tarball at {self.source_full_path}. Conda has left it "
                  "in place. Please report this to the maintainers of the package.", file=sys.stderr)
            sys.exit(1)
        ref = self.record_or_spec
        md5, sha, size = file_hashes(self.source_full_path)
        if isinstance(ref, MatchSpec):  # explicit: hashes computed when missing, not compared
            record = dict(index, url=ref.url, channel=str(ref.channel), fn=ref.fn,
                          md5=ref.md5 or md5, sha256=ref.sha256 or sha, size=size)
        else:
            record = dict(index)
            record.update({k: v for k, v in ref.dump().items() if v is not None})
        with open(os.path.join(self.target_full_path, "info", "repodata_record.json"), "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)


class ProgressiveFetchExtract:
    def __init__(self, link_prefs) -> None:
        self.link_precs = tuple(link_prefs)
        self.cache_actions, self.extract_actions = [], []

    @staticmethod
    def make_actions_for_record(ref):
        """§3.3 in order: 1. an extracted entry in any cache; 2. an archive in
        a writable cache (url required); 3. an archive in a read-only cache;
        4. download into the first writable cache."""
        caches = PackageCacheData.all_caches_writable_first()
        for c in caches:
            for pcrec in c.query(ref):
                if pcrec.is_extracted and pcrec_matches(pcrec, ref) and pcrec.url:
                    return None, None
        for c in caches:
            if not c.is_writable:
                continue
            for pcrec in c.query(ref):
                if pcrec.is_fetched and pcrec_matches(pcrec, ref) and pcrec.url:
                    return None, ExtractPackageAction(pcrec.package_tarball_full_path, c.pkgs_dir,
                                                      strip_ext(os.path.basename(pcrec.package_tarball_full_path)), ref)
        first = PackageCacheData.first_writable()
        for c in caches:
            if c.is_writable:
                continue
            for pcrec in c.query(ref):
                if pcrec.is_fetched and pcrec_matches(pcrec, ref):
                    fn = os.path.basename(pcrec.package_tarball_full_path)
                    return (CacheUrlAction(path_to_url(pcrec.package_tarball_full_path), first.pkgs_dir, fn),
                            ExtractPackageAction(os.path.join(first.pkgs_dir, fn), first.pkgs_dir, strip_ext(fn), ref))
        url = ref.url.split("#", 1)[0]
        fn = url.rsplit("/", 1)[-1]
        return (CacheUrlAction(url, first.pkgs_dir, fn, sha256=ref.sha256, md5=ref.md5,
                               size=getattr(ref, "size", None)),
                ExtractPackageAction(os.path.join(first.pkgs_dir, fn), first.pkgs_dir, strip_ext(fn), ref))

    def prepare(self) -> None:
        for ref in self.link_precs:
            cache, extract = self.make_actions_for_record(ref)
            if cache is not None:
                self.cache_actions.append((ref, cache))
            if extract is not None:
                self.extract_actions.append((ref, extract))

    def execute(self) -> None:
        self.prepare()
        if (self.cache_actions or self.extract_actions) and not (context.quiet or context.json):
            print("\nDownloading and Extracting Packages:")
        for ref, action in self.cache_actions:
            if not (context.quiet or context.json):
                print(f"  {action.target_fn}")
            action.execute()
        for _, action in self.extract_actions:
            action.execute()
        PackageCacheData.clear()
