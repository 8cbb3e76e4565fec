#include <condaguard/channel/publish.hpp>
#include <condaguard/package/archive.hpp>
#include <condaguard/trust/sigfile.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/parallel.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <ext/stdio_filebuf.h>
#include <istream>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

namespace condaguard {

namespace stdfs = std::filesystem;
using json = nlohmann::json;

namespace {

// What identifies an unchanged file between runs.
struct FileStamp {
    std::uint64_t size = 0, ino = 0;
    std::int64_t mtime_ns = 0, ctime_ns = 0;
    json to_json() const { return {{"size", size}, {"ino", ino}, {"mtime_ns", mtime_ns}, {"ctime_ns", ctime_ns}}; }
    bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_of(const struct stat& st) {
    return {static_cast<std::uint64_t>(st.st_size), static_cast<std::uint64_t>(st.st_ino),
            std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec,
            std::int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec};
}

std::optional<FileStamp> stamp_from(const json& j) {
    try {
        return FileStamp{j.at("size").get<std::uint64_t>(), j.at("ino").get<std::uint64_t>(),
                         j.at("mtime_ns").get<std::int64_t>(), j.at("ctime_ns").get<std::int64_t>()};
    } catch (const json::exception&) {
        return std::nullopt;
    }
}

std::optional<Sha256Digest> digest_from_hex(std::string_view hex) {
    Sha256Digest d{};
    if (hex.size() != 64) return std::nullopt;
    for (std::size_t i = 0; i < 32; ++i) {
        auto nib = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            return -1;
        };
        const int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        d[i] = static_cast<unsigned char>(hi << 4 | lo);
    }
    return d;
}

// Every file a run replaces must be absent or a regular file: a symbolic
// link, FIFO or directory planted there refuses the run, naming it. (The
// writes themselves rename inside the directory descriptor and never follow
// a link; this makes the plant loud instead of silently replaced.)
void refuse_planted(int dirfd, const std::string& name, const stdfs::path& display) {
    const fs::FileKind k = fs::kind_at(dirfd, name);
    if (k != fs::FileKind::Missing && k != fs::FileKind::Regular)
        throw std::runtime_error(fmt::format("{} is {}; refusing to write over it", display.string(), fs::describe(k)));
}

bool is_plain_file_at(int dirfd, const std::string& name) { return fs::kind_at(dirfd, name) == fs::FileKind::Regular; }

// A small file read through the bounded JSON reader: empty bytes and a null
// value when it is missing; a malformed one (duplicate key, too deep, too
// large, not JSON) is not used.
struct SmallJson {
    std::string bytes;
    json value;
};
SmallJson read_small_json_at(int dirfd, const std::string& name, const stdfs::path& display, std::size_t cap) {
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted_at(dirfd, name, display);
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing) return {};
        throw std::runtime_error(display.string() + " " + e.what());
    }
    auto r = fs::read_capped(f.fd.get(), cap, display.string());
    if (r.too_big) return {};
    SmallJson out{std::move(r.data), json()};
    try {
        out.value = parse_json(out.bytes, JsonLimits{.max_bytes = cap});
    } catch (const JsonError&) {
        out.value = json();  // an untrusted cache that is malformed is ignored: every package is read again
    }
    return out;
}

// A signing run trusts the incremental cache only when it carries a good
// signature by the signing key: the cache feeds records into what is signed.
// The .sig is read inside the cache's directory, never by path.
bool cache_signed_by(const std::string& bytes, int cache_dirfd, const stdfs::path& sig_path,
                     const IndexSigning& signing) {
    try {
        const SigFile sig = read_sig_file_at(cache_dirfd, sig_path.filename().string(), sig_path);
        return sig.key == signing.key_name &&
               signing.key->public_key().verify_digest(sha256_bytes(bytes), sig.signature);
    } catch (const std::exception&) {
        return false;
    }
}

bool is_string_list(const json& j) {
    return j.is_array() && std::all_of(j.begin(), j.end(), [](const json& e) { return e.is_string(); });
}

// conda needs `depends` on every record (it appends to it for python), and
// reads `depends` and `constrains` as lists of match specs.
std::optional<std::string> normalise_dependencies(json& rec) {
    if (!rec.contains("depends")) rec["depends"] = json::array();
    for (const char* key : {"depends", "constrains"})
        if (rec.contains(key) && !is_string_list(rec[key]))
            return fmt::format("info/index.json '{}' is not a list of strings", key);
    return std::nullopt;
}

struct Candidate {
    std::string fn;
    PackageName name;
    std::optional<json> record;  // set when indexed
    std::optional<std::string> problem;
    bool scanned = false;
    FileStamp stamp;
};

// Reads one package (or reuses its cached record) into `c`.
// The package is opened relative to the subdir's descriptor (never by path).
void index_one(int dirfd, const stdfs::path& dir, const std::string& subdir, const json& cache,
               const ScanLimits& limits, Candidate& c) {
    const stdfs::path path = dir / c.fn;
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted_at(dirfd, c.fn, path);
    } catch (const fs::NotRegularFile& e) {
        c.problem = e.what();
        return;
    }
    const fs::Fd& fd = f.fd;
    const struct stat& st = f.st;
    c.stamp = stamp_of(st);
    if (auto it = cache.find(c.fn); it != cache.end() && it->is_object()) {
        const auto stamp = it->find("stamp");
        const auto record = it->find("record");
        if (stamp != it->end() && record != it->end() && record->is_object() && stamp_from(*stamp) == c.stamp) {
            c.record = *record;
            return;
        }
    }
    c.scanned = true;
    try {
        PackageScan scan = scan_package(fd.get(), c.name, limits);
        if (!scan.index_json) {
            c.problem = "has no info/index.json";
            return;
        }
        if (auto why = identity_mismatch(*scan.index_json, c.name, subdir)) {
            c.problem = *why;
            return;
        }
        json rec = std::move(*scan.index_json);
        if (auto why = normalise_dependencies(rec)) {
            c.problem = *why;
            return;
        }
        rec["md5"] = to_hex(scan.md5);
        rec["sha256"] = to_hex(scan.sha256);
        rec["size"] = scan.size;
        rec.erase("sig");
        c.record = std::move(rec);
    } catch (const CorruptPackage& e) {
        c.problem = std::string("corrupt archive: ") + e.what();
    }
}

// Streams a repodata.json just far enough to find info.guard.version: it stops
// there, or when info closes without one. The indexer writes info first, so
// a large old index costs a few hundred bytes, not a full parse.
class GuardVersionReader : public nlohmann::json_sax<json> {
public:
    std::optional<std::int64_t> version;

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t v) override { return found(v); }
    bool number_unsigned(number_unsigned_t v) override {
        // Past int64: keep it out of range so the caller refuses it.
        return found(v > static_cast<number_unsigned_t>(INT64_MAX) ? -1 : static_cast<std::int64_t>(v));
    }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return open(); }
    bool key(string_t& k) override {
        pending_ = k;
        return true;
    }
    bool end_object() override {
        if (in({"", "info"})) return false;  // info is over: nothing more to learn
        containers_.pop_back();
        return true;
    }
    bool start_array(std::size_t) override { return open(); }
    bool end_array() override {
        containers_.pop_back();
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

private:
    bool open() {
        containers_.push_back(std::exchange(pending_, std::string()));
        return true;
    }
    bool in(std::initializer_list<const char*> path) const {
        return std::equal(containers_.begin(), containers_.end(), path.begin(), path.end());
    }
    bool found(std::int64_t v) {
        if (!in({"", "info", "guard"}) || pending_ != "version") return true;
        version = v;
        return false;  // stop reading
    }
    std::vector<std::string> containers_;  // the key each open container sits under ("" for the root)
    std::string pending_;
};

// The largest previous repodata.json read for its version (a client's own default cap).
constexpr std::uint64_t max_previous_index_bytes = std::uint64_t{1} << 30;

// info.guard.version of the repodata.json in `dirfd`, streamed through the
// bounded reader (depth cap, no repeated key in what is read before it).
std::optional<std::int64_t> read_guard_version(int dirfd, const stdfs::path& display) {
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted_at(dirfd, repodata_name, display);
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing) return std::nullopt;
        throw std::runtime_error(display.string() + " " + e.what());
    }
    if (static_cast<std::uint64_t>(f.st.st_size) > max_previous_index_bytes)
        throw std::runtime_error(display.string() + " is " + too_large_message(max_previous_index_bytes));
    // The filebuf owns (and closes) a duplicate; f.fd closes the original.
    const int dup_fd = ::fcntl(f.fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) throw fs::errno_error(display.string());
    __gnu_cxx::stdio_filebuf<char> buf(dup_fd, std::ios::in | std::ios::binary);
    std::istream in(&buf);
    GuardVersionReader reader;
    BoundedSax bounded(reader, max_json_depth);
    try {
        json::sax_parse(in, &bounded);
    } catch (const JsonError& e) {
        throw std::runtime_error(display.string() + ": " + e.what());
    }
    return reader.version;
}

std::int64_t previous_guard_version(std::optional<std::int64_t> from_repodata, const json& old_cache) {
    constexpr std::int64_t max_version = std::int64_t{1} << 53;  // exact in every JSON reader
    std::int64_t v = from_repodata.value_or(0);
    if (auto it = old_cache.find("guard_version"); old_cache.is_object() && it != old_cache.end() && it->is_number_integer())
        v = std::max(v, it->get<std::int64_t>());
    if (v < 0 || v >= max_version) throw std::runtime_error(fmt::format("index version {} is out of range", v));
    return v;
}

// One subdir being indexed: its directory, reached without following links.
struct SubdirTarget {
    fs::Fd fd;               // CHANNEL/SUBDIR, opened O_NOFOLLOW | O_DIRECTORY from the channel's descriptor
    stdfs::path dir;         // for messages
    std::string subdir;
};

// ---- step 1: the candidates ----

std::vector<Candidate> list_candidates(const SubdirTarget& t, SubdirReport& report) {
    std::vector<Candidate> cands;
    for (const auto& fn : fs::list_dir(t.fd.get(), t.dir.string())) {
        if (!fn.ends_with(".conda") && !fn.ends_with(".tar.bz2")) continue;
        if (auto name = parse_package_file_name(fn)) {
            cands.push_back(Candidate{fn, std::move(*name), {}, {}, false, {}});
        } else {
            report.excluded.push_back({fn, "file name is not NAME-VERSION-BUILD.conda or .tar.bz2"});
        }
    }
    std::sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) { return a.fn < b.fn; });
    return cands;
}

// ---- step 2: the previous run's cache ----

struct OldCache {
    fs::Fd dir;    // SUBDIR/.cache, created when missing
    json value;    // null when missing or malformed
    json packages; // the records that may be reused
};

OldCache read_cache(const SubdirTarget& t, const IndexOptions& opt) {
    const stdfs::path cache_dir = t.dir / index_cache_dir;
    if (::mkdirat(t.fd.get(), index_cache_dir, 0755) != 0 && errno != EEXIST) throw fs::errno_error(cache_dir.string());
    fs::OpenedDir d = fs::open_dir_at(t.fd.get(), index_cache_dir);
    if (!d.fd)
        throw std::runtime_error(
            fmt::format("{} is {}; refusing to use it", cache_dir.string(), fs::describe(d.kind)));
    OldCache c{std::move(d.fd), json(), json::object()};
    const stdfs::path cache_path = cache_dir / index_cache_name;
    SmallJson old = read_small_json_at(c.dir.get(), index_cache_name, cache_path, max_index_cache_bytes);
    c.value = std::move(old.value);
    // Records are reused only from a trusted cache. The version counter is
    // read from any cache: an edit can only raise it (a loud error past the
    // range) or lower it (clients refuse the result as ROLLBACK).
    const stdfs::path sig_path = cache_path.string() + ".sig";
    const bool trusted = !opt.signing || cache_signed_by(old.bytes, c.dir.get(), sig_path, *opt.signing);
    if (trusted && c.value.is_object() && c.value.value("format", 0) == 1 && c.value.contains("packages") &&
        c.value["packages"].is_object())
        c.packages = c.value["packages"];
    return c;
}

// ---- step 3: assemble the records (signing packages on request) ----

struct Assembled {
    json packages = json::object(), packages_conda = json::object(), cache_packages = json::object();
};

Assembled assemble(const SubdirTarget& t, std::vector<Candidate>& cands, const IndexOptions& opt, SubdirReport& report) {
    Assembled out;
    for (auto& c : cands) {
        if (c.problem) {
            report.excluded.push_back({c.fn, *c.problem});
            continue;
        }
        (c.scanned ? report.scanned : report.reused)++;
        out.cache_packages[c.fn] = {{"stamp", c.stamp.to_json()}, {"record", *c.record}};
        const std::string sig_name = c.fn + ".sig";
        refuse_planted(t.fd.get(), sig_name, t.dir / sig_name);
        if (opt.signing && opt.signing->sign_packages && !is_plain_file_at(t.fd.get(), sig_name)) {
            auto digest = digest_from_hex((*c.record)["sha256"].get<std::string>());
            if (!digest) throw std::logic_error("indexed record has a malformed sha256");
            const auto sig = opt.signing->key->sign_digest(*digest);
            fs::write_atomic_at(t.fd.get(), sig_name, format_sig_file(opt.signing->key_name, sig), 0644, false,
                                t.dir / sig_name);
            report.signed_packages.push_back(c.fn);
        }
        if (is_plain_file_at(t.fd.get(), sig_name)) (*c.record)["sig"] = ".";
        (c.name.format == PackageFormat::Conda ? out.packages_conda : out.packages)[c.fn] = std::move(*c.record);
        ++report.packages;
    }
    std::sort(report.excluded.begin(), report.excluded.end(),
              [](const auto& a, const auto& b) { return a.file < b.file; });
    return out;
}

// ---- step 4: write repodata.json, its signature, and the cache ----

void write_outputs(const SubdirTarget& t, const OldCache& cache, Assembled rec, std::int64_t guard_version,
                   const IndexOptions& opt, SubdirReport& report) {
    json info = {{"subdir", t.subdir}};
    if (opt.signing) {
        Guard g{opt.signing->channel_id, t.subdir, guard_version + 1, opt.signing->signed_at,
                opt.signing->signed_at + opt.signing->lifetime};
        info["guard"] = g.to_json();
        guard_version = g.version;
        report.guard = std::move(g);
    }
    const json repodata = {{"info", std::move(info)},
                           {"packages", std::move(rec.packages)},
                           {"packages.conda", std::move(rec.packages_conda)},
                           {"removed", json::array()},
                           {"repodata_version", 1}};
    const std::string bytes = repodata.dump(2, ' ', true) + "\n";
    const int dir = t.fd.get();
    fs::write_atomic_at(dir, repodata_name, bytes, 0644, false, report.repodata);
    if (opt.signing) {
        fs::write_atomic_at(dir, repodata_sig_name,
                            format_sig_file(opt.signing->key_name, opt.signing->key->sign_digest(sha256_bytes(bytes))),
                            0644, false, t.dir / repodata_sig_name);
    } else if (::unlinkat(dir, repodata_sig_name, 0) == 0) {
        report.removed_stale_signature = true;  // it signed other bytes
    }
    const std::string cache_sig_name = std::string(index_cache_name) + ".sig";
    const std::string new_cache =
        json{{"format", 1}, {"guard_version", guard_version}, {"packages", std::move(rec.cache_packages)}}.dump() + "\n";
    fs::write_atomic_at(cache.dir.get(), index_cache_name, new_cache, 0644, false, t.dir / index_cache_path);
    if (opt.signing)
        fs::write_atomic_at(cache.dir.get(), cache_sig_name,
                            format_sig_file(opt.signing->key_name, opt.signing->key->sign_digest(sha256_bytes(new_cache))),
                            0644, false, t.dir / index_cache_dir / cache_sig_name);
    else
        ::unlinkat(cache.dir.get(), cache_sig_name.c_str(), 0);
}

SubdirReport index_subdir(const SubdirTarget& t, const IndexOptions& opt) {
    SubdirReport report;
    report.subdir = t.subdir;
    report.repodata = t.dir / repodata_name;
    // Nothing is written before every target has been checked.
    refuse_planted(t.fd.get(), repodata_name, report.repodata);
    refuse_planted(t.fd.get(), repodata_sig_name, t.dir / repodata_sig_name);
    std::vector<Candidate> cands = list_candidates(t, report);
    const OldCache cache = read_cache(t, opt);
    for (const std::string& name : {std::string(index_cache_name), std::string(index_cache_name) + ".sig"})
        refuse_planted(cache.dir.get(), name, t.dir / index_cache_dir / name);
    const std::int64_t previous =
        previous_guard_version(read_guard_version(t.fd.get(), report.repodata), cache.value);
    parallel_for(cands.size(), opt.jobs, [&](std::size_t i) { index_one(t.fd.get(), t.dir, t.subdir, cache.packages, opt.limits, cands[i]);
    });
    Assembled rec = assemble(t, cands, opt, report);
    write_outputs(t, cache, std::move(rec), previous, opt, report);
    return report;
}

// A subdir entry of the channel that is not a directory of its own (a
// symbolic link, a file): reported and left alone, never followed.
SubdirReport refused_subdir(const stdfs::path& channel, const std::string& name, fs::FileKind kind) {
    SubdirReport r;
    r.subdir = name;
    r.repodata = channel / name / repodata_name;
    r.excluded.push_back({"", fmt::format("is {}, not a directory: not indexed (subdirs are never followed)",
                                          fs::describe(kind))});
    return r;
}

bool wanted_subdir(int fd, const std::string& name, const stdfs::path& dir) {
    if (name == "noarch" || fs::kind_at(fd, repodata_name) != fs::FileKind::Missing) return true;
    const auto names = fs::list_dir(fd, dir.string());
    return std::any_of(names.begin(), names.end(), [](const auto& n) { return parse_package_file_name(n).has_value(); });
}

}  // namespace

std::vector<SubdirReport> index_channel(const stdfs::path& channel, const IndexOptions& opt) {
    if (opt.signing && opt.signing->key == nullptr) throw std::logic_error("index signing without a key");
    fs::Fd root;
    try {
        root = fs::open_dir(channel);
    } catch (const std::system_error& e) {
        throw std::runtime_error(channel.string() + ": not a directory (" + e.code().message() + ")");
    }
    if (fs::kind_at(root.get(), "noarch") == fs::FileKind::Missing && ::mkdirat(root.get(), "noarch", 0755) != 0 &&
        errno != EEXIST)
        throw fs::errno_error((channel / "noarch").string());
    std::vector<std::string> names;
    for (auto& n : fs::list_dir(root.get(), channel.string()))
        if (is_subdir_name(n)) names.push_back(std::move(n));
    std::sort(names.begin(), names.end());
    std::vector<SubdirReport> reports;
    for (const auto& name : names) {
        fs::OpenedDir d = fs::open_dir_at(root.get(), name);
        if (!d.fd) {
            if (d.kind == fs::FileKind::Symlink || name == "noarch") reports.push_back(refused_subdir(channel, name, d.kind));
            continue;  // a plain file with a subdir's name is not a subdir
        }
        if (!wanted_subdir(d.fd.get(), name, channel / name)) continue;
        reports.push_back(index_subdir(SubdirTarget{std::move(d.fd), channel / name, name}, opt));
    }
    return reports;
}

}  // namespace condaguard
