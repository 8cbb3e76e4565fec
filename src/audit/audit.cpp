#include <condaguard/audit/audit.hpp>
#include <condaguard/audit/record.hpp>
#include <condaguard/audit/untracked.hpp>
#include <condaguard/install/explicit.hpp>
#include <condaguard/install/gate.hpp>
#include <condaguard/install/pkgs_dir.hpp>
#include <condaguard/package/manifest.hpp>
#include <condaguard/package/name.hpp>
#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/parallel.hpp>
#include <condaguard/sys/url.hpp>
#include <condaguard/trust/digest.hpp>
#include <condaguard/trust/keys.hpp>
#include <condaguard/trust/verifier.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard {

namespace stdfs = std::filesystem;

namespace {

using Owned = std::set<std::string, std::less<>>;

// ---- restoring a placeholder ----------------------------------------------

std::optional<std::string> restore_binary(const std::string& data, std::string_view prefix, std::string_view placeholder) {
    // conda: each match of PLACEHOLDER([^\0]*?)\0 became the same bytes with
    // every PLACEHOLDER in it replaced by PREFIX, followed by
    // (len(placeholder) - len(prefix)) * occurrences NULs.
    if (prefix.size() > placeholder.size()) return std::nullopt;
    const std::size_t pad = placeholder.size() - prefix.size();
    std::string out;
    out.reserve(data.size());
    std::size_t pos = 0;
    while (true) {
        const std::size_t hit = data.find(prefix, pos);
        if (hit == std::string::npos) break;
        const std::size_t nul = data.find('\0', hit);
        if (nul == std::string::npos) break;  // conda's pattern needs the NUL
        out.append(data, pos, hit - pos);
        std::size_t occurrences = 0;
        for (std::size_t i = hit; i < nul;) {
            if (data.compare(i, prefix.size(), prefix) == 0) {
                out.append(placeholder);
                i += prefix.size();
                ++occurrences;
            } else {
                out.push_back(data[i++]);
            }
        }
        out.push_back('\0');
        const std::size_t padding = pad * occurrences;
        if (nul + 1 + padding > data.size()) return std::nullopt;
        for (std::size_t i = 0; i < padding; ++i)
            if (data[nul + 1 + i] != '\0') return std::nullopt;
        pos = nul + 1 + padding;
    }
    out.append(data, pos, std::string::npos);
    return out;
}

}  // namespace

std::optional<std::string> restore_placeholder(std::string data, std::string_view prefix, std::string_view placeholder,
                                               bool binary) {
    if (prefix.empty()) return std::nullopt;
    if (binary) return restore_binary(data, prefix, placeholder);
    std::string out;
    out.reserve(data.size());
    std::size_t pos = 0;
    for (std::size_t hit; (hit = data.find(prefix, pos)) != std::string::npos; pos = hit + prefix.size()) {
        out.append(data, pos, hit - pos);
        out.append(placeholder);
    }
    out.append(data, pos, std::string::npos);
    return out;
}

namespace {

// ---- what each file should be ---------------------------------------------

struct Expected {
    std::size_t package = 0;
    std::string path;  // prefix-relative
    PathType type = PathType::Hardlink;
    std::optional<std::string> sha256;            // of the file as packaged
    std::optional<std::string> sha256_in_prefix;  // unverified packages only: the record's
    std::optional<std::uint64_t> size;
    std::optional<std::string> placeholder;
    FileMode file_mode = FileMode::Text;
    std::optional<mode_t> member_mode;         // verified packages: the archive member's mode
    std::optional<std::string> link_target;    // verified packages: the archive member's link text
    std::vector<std::string> record_disagrees; // R reasons
    std::optional<std::string> generated_problem;  // R: a generated entry the package cannot account for
};

std::string_view dir_of(std::string_view p) {
    const auto s = p.rfind('/');
    return s == std::string_view::npos ? std::string_view{} : p.substr(0, s);
}
std::string_view base_of(std::string_view p) {
    const auto s = p.rfind('/');
    return s == std::string_view::npos ? p : p.substr(s + 1);
}

// Where conda links a noarch: python package's paths: site-packages/X goes
// below the environment's site-packages (lib/pythonX.Y/ on Unix), found
// from the record's own paths, and python-scripts/X to bin/X.
class NoarchMap {
public:
    NoarchMap(const std::vector<PathEntry>& package, const std::vector<std::string>& record_paths, bool python) {
        if (!python) return;
        const Owned listed(record_paths.begin(), record_paths.end());
        for (const auto& e : package) {
            if (!e.path.starts_with("site-packages/")) continue;
            for (const auto& r : record_paths)
                if (r.size() > e.path.size() && r.ends_with(e.path) && r[r.size() - e.path.size() - 1] == '/') {
                    site_parent_ = r.substr(0, r.size() - e.path.size());
                    return;
                }
        }
        python_ = python;
    }
    std::string map(const std::string& p) const {
        if (site_parent_ && p.starts_with("site-packages/")) return *site_parent_ + p;
        if ((site_parent_ || python_) && p.starts_with("python-scripts/")) return "bin/" + p.substr(15);
        return p;
    }

private:
    std::optional<std::string> site_parent_;  // "lib/python3.12/"
    bool python_ = false;
};

// The names info/link.json declares as entry points ("NAME = module:func").
std::set<std::string> entry_point_names(const std::map<std::string, std::string>& info) {
    std::set<std::string> out;
    auto it = info.find("info/link.json");
    if (it == info.end()) return out;
    const nlohmann::json j = parse_json(it->second, JsonLimits{.max_bytes = max_manifest_info_bytes});
    auto noarch = j.find("noarch");
    if (noarch == j.end() || !noarch->is_object()) return out;
    auto eps = noarch->find("entry_points");
    if (eps == noarch->end() || !eps->is_array()) return out;
    for (const auto& e : *eps) {
        if (!e.is_string()) continue;
        std::string s = e.get<std::string>();
        s = s.substr(0, s.find('='));
        while (!s.empty() && s.back() == ' ') s.pop_back();
        while (!s.empty() && s.front() == ' ') s.erase(0, 1);
        if (!s.empty()) out.insert(s);
    }
    return out;
}

// ---- per package state -----------------------------------------------------

struct Package {
    PackageAudit audit;
    bool archive_missing = false;  // in no package directory (--online may look it up)
    std::optional<PrefixRecord> record;
    std::optional<PackageManifest> manifest;  // set when the archive verified and the record agrees with it
    std::optional<std::vector<PathEntry>> package_paths;
};

std::string channel_base(const PrefixRecord& r) {
    std::string c = r.channel;
    if (c.empty() && !r.url.empty()) c = r.url.substr(0, r.url.rfind('/'));
    if (!r.subdir.empty() && c.ends_with("/" + r.subdir)) c.resize(c.size() - r.subdir.size() - 1);
    if (auto u = parse_url(c)) return u->without_credentials();
    return redact_url(c);
}

VerdictError invalid(const std::string& why) { return VerdictError(Verdict::Invalid, why); }

class Authenticator {
public:
    Authenticator(const AuditOptions& o, const Environment& env)
        : o_(o), store_(env.keys_dir, KeyPolicy{.min_rsa_bits = o.min_rsa_bits}) {
        for (const auto& p : o.pkgs_dirs) {
            try {
                // conda follows a link to a package directory; so does the search (as the gate's).
                dirs_.push_back(PackageDir::open(stdfs::canonical(p), CreateIfMissing::No));
            } catch (const std::exception&) {
                missing_dirs_.push_back(p.string());
            }
        }
    }

    // Step 1 for one package whose record parsed.
    void authenticate(Package& p) {
        const PrefixRecord& rec = *p.record;
        Result& r = p.audit.result;
        const auto name = parse_package_file_name(rec.fn);
        if (!name) throw invalid(fmt::format("names the package file \"{}\", which is not NAME-VERSION-BUILD.conda "
                                             "or .tar.bz2", rec.fn));
        if (name->name != rec.name || name->version != rec.version || name->build != rec.build)
            throw invalid(fmt::format("names {}-{}-{} but the package file {}", rec.name, rec.version, rec.build,
                                      rec.fn));
        if (!rec.url.empty()) {
            std::string_view u = rec.url;
            u = u.substr(0, u.find('#'));
            if (u.substr(u.rfind('/') + 1) != rec.fn)
                throw invalid(fmt::format("its url ends in another file name than {}", rec.fn));
        }
        const PackageDir* dir = nullptr;
        std::vector<std::string> seen;
        for (const auto& d : dirs_) {
            const CachedEntry e = d.inspect(rec.fn);
            if (e.archive == fs::FileKind::Regular) {
                dir = &d;
                break;
            }
            if (e.archive != fs::FileKind::Missing)
                seen.push_back(fmt::format("{} is {}", (d.path() / rec.fn).string(), fs::describe(e.archive)));
        }
        if (dir == nullptr) {
            p.archive_missing = true;
            std::vector<std::string> looked;
            for (const auto& d : dirs_) looked.push_back(d.path().string());
            for (const auto& m : missing_dirs_) looked.push_back(m + " (not a directory)");
            throw VerdictError(
                Verdict::MissingSig,
                fmt::format("no archive {} in the package directories ({}){}: nothing signed vouches for this "
                            "record, so its files were checked against the record alone",
                            rec.fn, looked.empty() ? std::string("none given") : fmt::format("{}", fmt::join(looked, ", ")),
                            seen.empty() ? std::string() : fmt::format("; {}", fmt::join(seen, "; "))));
        }
        p.audit.tarball = (dir->path() / rec.fn).string();
        fs::OpenedFile archive = dir->open_cached_tarball(rec.fn);
        const HashedStream h = hash_fd(archive.fd.get());
        bytes_hashed_ += h.size;
        const std::string sig_name = rec.fn + ".sig";
        if (dir->inspect(rec.fn).sig != fs::FileKind::Regular)
            throw VerdictError(Verdict::MissingSig,
                               fmt::format("the archive {} has no signature {} beside it: the record cannot be "
                                           "authenticated, so its files were checked against the record alone",
                                           p.audit.tarball, sig_name));
        Result s = verifier_.verify_digest_at(h.sha256, dir->fd(), sig_name, dir->path() / sig_name, r.path);
        judge(s, rec);
        r.key = s.key;
        r.fingerprint = s.fingerprint;
        if (s.verdict != Verdict::Valid) throw VerdictError(s.verdict, fmt::format("{}: {}", p.audit.tarball, s.reason));
        // A24: the record must describe exactly the verified bytes.
        const std::string digest = to_hex(h.sha256);
        if (rec.sha256 && *rec.sha256 != digest)
            throw invalid(fmt::format("its sha256 {} is not that of the signed archive {} ({})", *rec.sha256,
                                      p.audit.tarball, digest));
        if (rec.size && *rec.size != h.size)
            throw invalid(fmt::format("its size {} is not that of the signed archive {} ({})", *rec.size,
                                      p.audit.tarball, h.size));
        if (::lseek(archive.fd.get(), 0, SEEK_SET) != 0) throw fs::errno_error("rewind " + p.audit.tarball);
        PackageManifest m = read_package_manifest(archive.fd.get(), *name, TrustedRecord{.size = h.size, .sha256 = h.sha256});
        if (rec.md5 && *rec.md5 != to_hex(m.scan.md5))
            throw invalid(fmt::format("its md5 {} is not that of the signed archive {}", *rec.md5, p.audit.tarball));
        auto index = m.info_files.find("info/index.json");
        if (index == m.info_files.end()) throw invalid("the signed archive has no info/index.json");
        const nlohmann::json index_json = parse_json(index->second, JsonLimits{.max_bytes = max_index_json_bytes});
        if (auto why = identity_mismatch(index_json, *name, rec.subdir)) throw invalid("the signed archive's " + *why);
        auto paths = m.info_files.find("info/paths.json");
        if (paths == m.info_files.end())
            throw VerdictError(Verdict::Error, "the signed archive has no info/paths.json (an old package): its "
                                               "files cannot be checked");
        try {
            p.package_paths = parse_paths(parse_json(paths->second, JsonLimits{.max_bytes = max_manifest_info_bytes}));
        } catch (const std::exception& e) {
            throw invalid(fmt::format("the signed archive's info/paths.json: {}", e.what()));
        }
        p.manifest = std::move(m);
        r.verdict = Verdict::Valid;
        r.reason = fmt::format("{}; the record matches the signed archive {}", s.reason, p.audit.tarball);
        p.audit.files_authenticated = true;
    }

    std::uint64_t bytes_hashed() const { return bytes_hashed_; }

private:
    // As the gate judges a signature: a revoked key is BAD_KEY, a good
    // signature by a key the channel's policy does not allow is UNTRUSTED_KEY.
    void judge(Result& s, const PrefixRecord& rec) const {
        if (s.verdict != Verdict::Valid) return;
        if (o_.revoked && s.fingerprint)
            if (auto rv = o_.revoked(*s.fingerprint)) {
                s.verdict = Verdict::BadKey;
                s.reason = fmt::format("key {} ({}) is revoked since {}: {}", s.key.value_or("?"), *s.fingerprint,
                                       rv->date, rv->reason);
                return;
            }
        if (!o_.trust_for) return;
        const ChannelTrust t = o_.trust_for(channel_base(rec));
        if (t.allowed_keys.empty()) return;
        const auto& k = t.allowed_keys;
        const bool by_name = s.key && std::find(k.begin(), k.end(), *s.key) != k.end();
        const bool by_fp = s.fingerprint && std::find(k.begin(), k.end(), "sha256:" + *s.fingerprint) != k.end();
        if (by_name || by_fp) return;
        s.verdict = Verdict::UntrustedKey;
        s.reason = fmt::format("signed by key {}, which the policy does not allow for channel {} (allowed: {})",
                               s.key.value_or("?"), channel_base(rec), fmt::join(k, ", "));
    }

    const AuditOptions& o_;
    KeyStore store_;
    Verifier verifier_{store_};
    std::vector<PackageDir> dirs_;
    std::vector<std::string> missing_dirs_;
    std::atomic<std::uint64_t> bytes_hashed_{0};
};

// What each package's files should be (step 2), and which paths it owns.
void expectations(Package& p, std::size_t index, std::vector<Expected>& out, Owned& owned) {
    if (!p.record) return;
    const PrefixRecord& rec = *p.record;
    std::map<std::string, const PathEntry*, std::less<>> in_record;
    if (rec.paths)
        for (const auto& e : *rec.paths) in_record.emplace(e.path, &e);
    if (!p.manifest) {
        // Not authenticated: the record is all there is.
        for (const auto& f : rec.files) owned.insert(f);
        if (!rec.paths) return;
        for (const auto& e : *rec.paths) {
            owned.insert(e.path);
            if (e.type == PathType::Directory) continue;
            out.push_back(Expected{.package = index, .path = e.path, .type = e.type, .sha256 = e.sha256,
                                   .sha256_in_prefix = e.sha256_in_prefix, .size = e.size,
                                   .placeholder = e.prefix_placeholder, .file_mode = e.file_mode});
        }
        return;
    }
    const PackageManifest& m = *p.manifest;
    std::vector<std::string> record_paths;
    for (const auto& [path, e] : in_record) record_paths.push_back(path);
    for (const auto& f : rec.files) record_paths.push_back(f);
    const NoarchMap map(*p.package_paths, record_paths, rec.noarch == "python");
    std::set<std::string, std::less<>> from_package;
    for (const auto& e : *p.package_paths) {
        if (e.type == PathType::Directory) continue;
        Expected x{.package = index, .path = map.map(e.path), .type = e.type, .sha256 = e.sha256, .size = e.size,
                   .placeholder = e.prefix_placeholder, .file_mode = e.file_mode};
        if (auto mm = m.members.find(e.path); mm != m.members.end()) {
            if (mm->second.kind == ManifestMember::Kind::Symlink) x.link_target = mm->second.target;
            else x.member_mode = mm->second.mode;
            const bool member_link = mm->second.kind == ManifestMember::Kind::Symlink;
            if (member_link != (e.type == PathType::Softlink))
                x.record_disagrees.push_back("the package's paths.json and its archive disagree on the file's type");
        } else {
            x.record_disagrees.push_back("the package's paths.json lists it but its archive does not hold it");
        }
        auto r = in_record.find(x.path);
        if (r == in_record.end()) {
            x.record_disagrees.push_back("the record does not list it");
        } else {
            const PathEntry& re = *r->second;
            if (re.type != e.type)
                x.record_disagrees.push_back(fmt::format("the record says {}, the package {}", to_string(re.type),
                                                         to_string(e.type)));
            if (re.sha256 != e.sha256) x.record_disagrees.push_back("the record's sha256 is not the package's");
            if (re.size != e.size) x.record_disagrees.push_back("the record's size is not the package's");
            if (re.prefix_placeholder != e.prefix_placeholder)
                x.record_disagrees.push_back("the record's prefix_placeholder is not the package's");
        }
        from_package.insert(x.path);
        owned.insert(x.path);
        out.push_back(std::move(x));
    }
    // A link.json that does not parse declares nothing: every entry point is then an R finding.
    std::set<std::string> entry_points;
    try {
        entry_points = entry_point_names(m.info_files);
    } catch (const std::exception&) {
    }
    for (const auto& [path, e] : in_record) {
        if (from_package.contains(path)) continue;
        Expected x{.package = index, .path = path, .type = e->type, .size = e->size};
        if (!is_generated(e->type)) {
            if (e->type == PathType::Directory) continue;
            x.record_disagrees.push_back("the record lists it, but the signed package has no such file");
            // Not owned: a file only an edited record claims is also untracked.
            out.push_back(std::move(x));
            continue;
        }
        switch (e->type) {
        case PathType::PycFile: {
            // DIR/__pycache__/STEM.TAG.pyc (or DIR/STEM.pyc) compiled from DIR/STEM.py
            const std::string_view base = base_of(path);
            std::string_view dir = dir_of(path);
            if (base_of(dir) == "__pycache__") dir = dir_of(dir);
            std::string source(dir);
            if (!source.empty()) source += '/';
            source.append(base.substr(0, base.find('.'))).append(".py");
            if (!from_package.contains(source))
                x.generated_problem = fmt::format("a pyc_file without its source {} in the signed package", source);
            break;
        }
        case PathType::UnixPythonEntryPoint:
        case PathType::WindowsPythonEntryPointScript:
        case PathType::WindowsPythonEntryPointExe: {
            std::string n(base_of(path));
            for (const char* suffix : {"-script.py", ".exe"})
                if (n.ends_with(suffix)) n.resize(n.size() - std::string_view(suffix).size());
            if (!entry_points.contains(n))
                x.generated_problem = fmt::format("an entry point {} that the signed package's info/link.json does "
                                                  "not declare", n);
            break;
        }
        default: break;
        }
        if (!x.generated_problem) owned.insert(path);
        out.push_back(std::move(x));
    }
}

// ---- checking files ---------------------------------------------------------

class Checker {
public:
    Checker(int prefix_fd, std::vector<std::string> prefix_strings)
        : prefix_fd_(prefix_fd), prefix_strings_(std::move(prefix_strings)) {}

    // Opens DIR (prefix-relative) one segment at a time without following links.
    fs::OpenedDir open_dir(std::string_view dir) const {
        fs::OpenedDir cur{.fd = fs::Fd(::fcntl(prefix_fd_, F_DUPFD_CLOEXEC, 0)), .kind = fs::FileKind::Directory};
        if (!cur.fd) throw fs::errno_error("dup");
        std::size_t start = 0;
        while (start < dir.size()) {
            const std::size_t end = std::min(dir.find('/', start), dir.size());
            fs::OpenedDir next = fs::open_dir_at(cur.fd.get(), std::string(dir.substr(start, end - start)));
            if (!next.fd) return next;
            cur = std::move(next);
            start = end + 1;
        }
        return cur;
    }

    void check(const Expected& x, int dirfd, FileFinding& f) {
        const std::string base(base_of(x.path));
        struct stat st {};
        if (::fstatat(dirfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) {
                f.flags |= FlagMissing;
                f.reason = "missing";
                return;
            }
            throw fs::errno_error("stat " + x.path);
        }
        const fs::FileKind kind = fs::kind_of(st.st_mode);
        if (x.type == PathType::Softlink) {
            if (kind != fs::FileKind::Symlink) {
                f.flags |= FlagLink;
                f.reason = fmt::format("is {}, the package has a symbolic link", fs::describe(kind));
                return;
            }
            if (!x.link_target) return;
            std::string buf(PATH_MAX, '\0');
            const ssize_t n = ::readlinkat(dirfd, base.c_str(), buf.data(), buf.size());
            if (n < 0) throw fs::errno_error("readlink " + x.path);
            buf.resize(static_cast<std::size_t>(n));
            if (buf != *x.link_target) {
                f.flags |= FlagLink;
                f.reason = fmt::format("links to {}, the package to {}", buf, *x.link_target);
            }
            return;
        }
        if (kind != fs::FileKind::Regular) {
            f.flags |= FlagLink;
            f.reason = fmt::format("is {}, the package has a file", fs::describe(kind));
            return;
        }
        std::vector<std::string> why;
        if ((st.st_mode & (S_ISUID | S_ISGID)) != 0) {
            f.flags |= FlagMode;
            why.push_back(fmt::format("mode {:04o} has setuid or setgid", st.st_mode & 07777));
        } else if (x.member_mode && ((st.st_mode & S_IXUSR) != 0) != ((*x.member_mode & S_IXUSR) != 0)) {
            f.flags |= FlagMode;
            why.push_back(fmt::format("mode {:04o}, the package has {:04o}", st.st_mode & 07777, *x.member_mode & 07777));
        }
        if (is_generated(x.type)) {
            if (!why.empty()) f.reason = fmt::format("{}", fmt::join(why, "; "));
            return;
        }
        fs::OpenedFile file = fs::open_untrusted_at(dirfd, base, x.path);
        std::uint64_t size = 0;
        std::string digest;
        if (x.placeholder) {
            if (static_cast<std::uint64_t>(file.st.st_size) > max_placeholder_file_bytes)
                throw std::runtime_error(fmt::format("larger than {} bytes, too large to restore its prefix placeholder",
                                                     max_placeholder_file_bytes));
            const fs::CappedRead data = fs::read_capped(file.fd.get(), max_placeholder_file_bytes, x.path);
            if (data.too_big) throw std::runtime_error("grew while being read");
            size = data.data.size();
            bytes_ += size;
            if (x.sha256_in_prefix || !x.sha256) {
                // Unverified: the record's sha256_in_prefix is all there is.
                digest = to_hex(sha256_bytes(data.data));
                if (x.sha256_in_prefix && digest != *x.sha256_in_prefix) {
                    f.flags |= FlagDigest;
                    why.push_back("content differs from the record's sha256_in_prefix");
                }
            } else {
                bool restored = false;
                for (const auto& prefix : prefix_strings_) {
                    auto back = restore_placeholder(data.data, prefix, *x.placeholder, x.file_mode == FileMode::Binary);
                    if (back && to_hex(sha256_bytes(*back)) == *x.sha256) {
                        restored = true;
                        break;
                    }
                }
                if (!restored) {
                    f.flags |= FlagDigest;
                    why.push_back("content differs from the signed package's, with the prefix placeholder put back");
                }
            }
            if (x.file_mode == FileMode::Binary && x.size && size != *x.size) {
                f.flags |= FlagSize;
                why.push_back(fmt::format("size {}, the package has {}", size, *x.size));
            }
        } else {
            const HashedStream h = hash_fd(file.fd.get());
            bytes_ += h.size;
            size = h.size;
            if (x.size && size != *x.size) {
                f.flags |= FlagSize;
                why.push_back(fmt::format("size {}, expected {}", size, *x.size));
            }
            const std::optional<std::string>& want = x.sha256 ? x.sha256 : x.sha256_in_prefix;
            if (want && to_hex(h.sha256) != *want) {
                f.flags |= FlagDigest;
                why.push_back("content differs");
            }
        }
        if (!why.empty()) f.reason = fmt::format("{}", fmt::join(why, "; "));
    }

    std::atomic<std::uint64_t> bytes_{0};

private:
    int prefix_fd_;
    std::vector<std::string> prefix_strings_;
};

// The spellings of the prefix conda may have written into files: the path
// as given, made absolute, and with links resolved.
std::vector<std::string> prefix_strings(const stdfs::path& prefix) {
    std::vector<std::string> out;
    std::error_code ec;
    for (stdfs::path p : {stdfs::absolute(prefix, ec).lexically_normal(), stdfs::canonical(prefix, ec)}) {
        std::string s = p.string();
        while (s.size() > 1 && s.back() == '/') s.pop_back();
        if (!s.empty() && std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    }
    return out;
}

// ---- the walk for untracked files -----------------------------------------

void walk(int prefix_fd, const Owned& owned, const AuditOptions& o, AuditReport& report) {
    struct Level {
        fs::Fd fd;
        std::string path;
        std::size_t depth;
    };
    std::vector<Level> stack;
    stack.push_back(Level{.fd = fs::Fd(::fcntl(prefix_fd, F_DUPFD_CLOEXEC, 0)), .path = "", .depth = 0});
    if (!stack.back().fd) throw fs::errno_error("dup");
    std::size_t entries = 0;
    while (!stack.empty()) {
        Level l = std::move(stack.back());
        stack.pop_back();
        for (const auto& name : fs::list_dir(l.fd.get(), l.path.empty() ? "prefix" : l.path)) {
            if (++entries > o.max_walk_entries)
                throw std::runtime_error(fmt::format("the prefix holds more than {} entries", o.max_walk_entries));
            const std::string path = l.path.empty() ? name : l.path + "/" + name;
            const fs::FileKind k = fs::kind_at(l.fd.get(), name);
            if (k == fs::FileKind::Directory) {
                fs::OpenedDir d = fs::open_dir_at(l.fd.get(), name);
                if (!d.fd) continue;  // replaced meanwhile: seen as what it is next time
                const bool urls = fs::kind_at(d.fd.get(), "urls.txt") == fs::FileKind::Regular;
                const bool env = fs::kind_at(d.fd.get(), "conda-meta") == fs::FileKind::Directory &&
                                 [&] {
                                     fs::OpenedDir cm = fs::open_dir_at(d.fd.get(), "conda-meta");
                                     return cm.fd && fs::kind_at(cm.fd.get(), "history") == fs::FileKind::Regular;
                                 }();
                if (walk_skips(path, urls, env)) continue;
                if (l.depth + 1 > o.max_walk_depth)
                    throw std::runtime_error(fmt::format("{} is more than {} directories deep", path, o.max_walk_depth));
                stack.push_back(Level{.fd = std::move(d.fd), .path = path, .depth = l.depth + 1});
                continue;
            }
            if (owned.contains(path)) continue;
            const UntrackedRule rule = classify_untracked(path, owned);
            if (!is_reported(rule)) continue;
            FileFinding f{.path = path, .flags = FlagUntracked};
            f.reason = rule == UntrackedRule::AlwaysReported
                           ? fmt::format("{} that no package owns: Python runs it at start-up", fs::describe(k))
                           : fmt::format("{} that no package owns", fs::describe(k));
            report.untracked.push_back(std::move(f));
        }
    }
    std::ranges::sort(report.untracked, {}, &FileFinding::path);
}

// --online: the records whose archive is gone, judged by the gate's dry run.
void look_up_online(std::vector<Package>& packages, const GateOptions& options, const Environment& env) {
    std::vector<std::size_t> which;
    std::vector<PackageUrl> urls;
    for (std::size_t i = 0; i < packages.size(); ++i) {
        Package& p = packages[i];
        if (!p.archive_missing || !p.record) continue;
        const PrefixRecord& rec = *p.record;
        Result& r = p.audit.result;
        if (rec.url.empty() || !rec.sha256) {
            r.reason += "; --online: the record has no url or no sha256 to look up";
            continue;
        }
        try {
            urls.push_back(parse_package_url(rec.url + "#" + *rec.sha256, "/"));
            which.push_back(i);
        } catch (const ExplicitError& e) {
            r.reason += fmt::format("; --online: its url is not a package URL: {}", e.what());
        }
    }
    if (urls.empty()) return;
    GateOptions g = options;
    g.dry_run = true;
    g.pkgs_dirs.clear();
    g.min_age.reset();  // an installed package is judged as it is, however young
    g.refuse_link_scripts = false;
    if (!g.trust_for) g.trust_for = [](const std::string&) { return ChannelTrust{}; };  // the defaults
    const GateReport report = run_gate(urls, g, env, {});
    for (std::size_t k = 0; k < which.size(); ++k) {
        Package& p = packages[which[k]];
        Result& r = p.audit.result;
        const Result& got = report.packages.at(k);
        const std::string index = fmt::format("{}/{}", redact_url(urls[k].channel_url), urls[k].subdir);
        if (got.verdict == Verdict::Valid && got.reason == dry_run_reason) {
            r.verdict = Verdict::Valid;
            r.key.reset();
            r.fingerprint.reset();
            for (const auto& ir : report.indexes)
                if (ir.path.starts_with(index)) {
                    r.key = ir.key;
                    r.fingerprint = ir.fingerprint;
                }
            r.reason = fmt::format("its sha256 is the signed index's ({}{}); the archive is in no package "
                                   "directory, so its files were checked against the record alone",
                                   index, r.key ? fmt::format(", key {}", *r.key) : std::string());
        } else if (got.verdict == Verdict::Valid) {
            r.reason += fmt::format("; --online: {} is not signed, which authenticates nothing", index);
        } else {
            r.verdict = got.verdict;
            r.key = got.key;
            r.fingerprint = got.fingerprint;
            r.reason = fmt::format("--online, the gate on {}: {}", index, got.reason);
        }
    }
}

}  // namespace

AuditReport audit_prefix(const stdfs::path& prefix, const AuditOptions& o, const Environment& env) {
    const fs::Fd prefix_fd = fs::open_dir(prefix);
    fs::OpenedDir meta = fs::open_dir_at(prefix_fd.get(), "conda-meta");
    if (!meta.fd)
        throw std::runtime_error(fmt::format("{} is not a conda environment: conda-meta is {}", prefix.string(),
                                             fs::describe(meta.kind)));
    std::vector<std::string> names;
    for (auto& n : fs::list_dir(meta.fd.get(), "conda-meta"))
        if (n.ends_with(".json")) names.push_back(std::move(n));
    std::ranges::sort(names);

    std::vector<Package> packages(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        Package& p = packages[i];
        p.audit.result.path = "conda-meta/" + names[i];
        guarded(p.audit.result, [&] {
            fs::OpenedFile f = fs::open_untrusted_at(meta.fd.get(), names[i], p.audit.result.path);
            const nlohmann::json j = read_json(f.fd.get(), JsonLimits{.max_bytes = max_prefix_record_bytes},
                                               p.audit.result.path);
            try {
                p.record = parse_prefix_record(j);
            } catch (const JsonError&) {
                throw;
            } catch (const std::runtime_error& e) {
                throw VerdictError(Verdict::Error, fmt::format("not a conda-meta record: {}", e.what()));
            }
            p.audit.fn = p.record->fn;
            p.audit.result.verdict = Verdict::Valid;
        });
    }

    // Step 1, on several threads: archives are hashed and read.
    Authenticator auth(o, env);
    parallel_for(packages.size(), o.jobs, [&](std::size_t i) {
        Package& p = packages[i];
        if (!p.record) return;
        p.audit.result.verdict = Verdict::Error;
        guarded(p.audit.result, [&] { auth.authenticate(p); });
    });

    if (o.online) look_up_online(packages, *o.online, env);

    // Step 2: every file, grouped by directory so each is opened once.
    std::vector<Expected> expected;
    Owned owned;
    for (std::size_t i = 0; i < packages.size(); ++i) expectations(packages[i], i, expected, owned);
    std::ranges::sort(expected, [](const Expected& a, const Expected& b) {
        return std::pair(dir_of(a.path), a.path) < std::pair(dir_of(b.path), b.path);
    });
    std::vector<std::pair<std::size_t, std::size_t>> groups;  // [from, to) in expected
    for (std::size_t i = 0; i < expected.size();) {
        std::size_t j = i + 1;
        while (j < expected.size() && dir_of(expected[j].path) == dir_of(expected[i].path)) ++j;
        groups.emplace_back(i, j);
        i = j;
    }
    std::vector<FileFinding> findings(expected.size());
    Checker checker(prefix_fd.get(), prefix_strings(prefix));
    std::atomic<std::size_t> done{0};
    std::mutex progress_mutex;
    auto last = std::chrono::steady_clock::now();
    parallel_for(groups.size(), o.jobs, [&](std::size_t g) {
        const auto [from, to] = groups[g];
        const std::string_view dir = dir_of(expected[from].path);
        fs::OpenedDir d = checker.open_dir(dir);
        for (std::size_t i = from; i < to; ++i) {
            const Expected& x = expected[i];
            FileFinding& f = findings[i];
            f.path = x.path;
            std::vector<std::string> r;
            if (!d.fd) {
                f.flags |= d.kind == fs::FileKind::Missing ? FlagMissing : FlagLink;
                f.reason = d.kind == fs::FileKind::Missing
                               ? "missing (its directory is missing)"
                               : fmt::format("a directory on its path is {}", fs::describe(d.kind));
            } else {
                try {
                    checker.check(x, d.fd.get(), f);
                } catch (const std::exception& e) {
                    f.flags |= FlagDigest;
                    f.reason = fmt::format("cannot be checked: {}", e.what());
                }
            }
            if (!x.record_disagrees.empty() || x.generated_problem) {
                f.flags |= FlagRecord;
                std::vector<std::string> parts;
                if (!f.reason.empty()) parts.push_back(f.reason);
                for (const auto& s : x.record_disagrees) parts.push_back(s);
                if (x.generated_problem) parts.push_back("the record lists " + *x.generated_problem);
                f.reason = fmt::format("{}", fmt::join(parts, "; "));
            }
        }
        const std::size_t n = done += to - from;
        if (o.progress) {
            std::lock_guard lock(progress_mutex);
            const auto now = std::chrono::steady_clock::now();
            if (now - last >= std::chrono::milliseconds(100) || n == expected.size()) {
                last = now;
                o.progress(AuditProgress{.files_done = n, .files_total = expected.size(), .bytes_done = checker.bytes_});
            }
        }
    });

    AuditReport report;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        PackageAudit& a = packages[expected[i].package].audit;
        ++a.files_checked;
        if (findings[i].flags != 0) a.files.push_back(std::move(findings[i]));
    }
    report.files_checked = expected.size();
    report.bytes_hashed = checker.bytes_ + auth.bytes_hashed();
    if (o.untracked) {
        try {
            walk(prefix_fd.get(), owned, o, report);
        } catch (const std::exception& e) {
            report.walk_error = e.what();
        }
    }
    for (auto& p : packages) {
        std::ranges::sort(p.audit.files, {}, &FileFinding::path);
        report.packages.push_back(std::move(p.audit));
    }
    return report;
}

}  // namespace condaguard
