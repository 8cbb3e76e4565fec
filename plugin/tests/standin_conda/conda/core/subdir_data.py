"""conda.core.subdir_data (conda-formats §1.1, §1.2, §1.4): repodata of one
channel subdir, fetched with urllib (http) or read (file://); records get
url = base_url_with_credentials/fn, fn, channel; a .conda record replaces the
.tar.bz2 of the same name (gaining legacy_bz2_md5 / legacy_bz2_size).

SIMPLIFIED: no repodata cache in PKGS/cache (so a refused run leaves the
package cache as it was; real conda writes its repodata cache during the
solve), no .zst, no shards, no info.base_url."""

import json
import urllib.error
import urllib.request
from urllib.parse import unquote, urlsplit

from ..exceptions import CondaHTTPError
from ..models.records import PackageRecord


def fetch(url: str):
    """The body, or None for a 404 / missing file."""
    if url.startswith("file://"):
        try:
            with open(unquote(urlsplit(url).path), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise CondaHTTPError(f"HTTP {e.code} for {urlsplit(url).path}") from None
    except OSError as e:
        raise CondaHTTPError(f"cannot fetch {urlsplit(url).path}: {e}") from None


def load_subdir(channel, repodata_fns=("current_repodata.json", "repodata.json")):
    """Records of channel (a Channel with its subdir): the first of
    repodata_fns that exists (a 404 falls back to the next, §1.4)."""
    subdir_url = channel.url(with_credentials=True)
    for fn in repodata_fns:
        body = fetch(f"{subdir_url}/{fn}")
        if body is not None:
            break
    else:
        return []
    data = json.loads(body)
    if data.get("info", {}).get("subdir", channel.subdir) != channel.subdir:
        raise ValueError(f"repodata subdir mismatch for {channel}")
    out = {}
    for key in ("packages", "packages.conda"):
        for fn, rec in (data.get(key) or {}).items():
            rec = dict(rec, fn=fn, url=f"{subdir_url}/{fn}", channel=channel, subdir=channel.subdir)
            stem = fn[: -len(".tar.bz2")] if fn.endswith(".tar.bz2") else fn[: -len(".conda")]
            if key == "packages.conda" and stem in out:
                old = out[stem]
                rec.update(legacy_bz2_md5=old.md5, legacy_bz2_size=old.size)
            out[stem] = PackageRecord(**rec)
    return list(out.values())
