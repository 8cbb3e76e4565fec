#include <condaguard/channel/publish.hpp>
#include <condaguard/package/archive.hpp>
#include <condaguard/trust/sigfile.hpp>

#include <condaguard/sys/fs.hpp>
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

bool is_plain_file(const stdfs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string read_small_file(const stdfs::path& p, std::size_t cap) {
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted(p);
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing) return {};
        throw std::runtime_error(p.string() + " " + e.what());
    }
    auto r = fs::read_capped(f.fd.get(), cap, p.string());
    return r.too_big ? std::string() : std::move(r.data);
}

json parse_or_null(const std::string& text) {
    auto j = json::parse(text, nullptr, false);
    return j.is_discarded() ? json() : j;
}

// A signing run trusts the incremental cache only when it carries a good
// signature by the signing key: the cache feeds records into what is signed.
bool cache_signed_by(const std::string& bytes, const stdfs::path& sig_path, const IndexSigning& signing) {
    try {
        const SigFile sig = read_sig_file(sig_path);
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
void index_one(const stdfs::path& dir, const std::string& subdir, const json& cache, const ScanLimits& limits,
               Candidate& c) {
    const stdfs::path path = dir / c.fn;
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted(path);
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

std::optional<std::int64_t> read_guard_version(const stdfs::path& repodata) {
    fs::OpenedFile f;
    try {
        f = fs::open_untrusted(repodata);
    } catch (const fs::NotRegularFile& e) {
        if (e.kind() == fs::FileKind::Missing) return std::nullopt;
        throw std::runtime_error(repodata.string() + " " + e.what());
    }
    // The filebuf owns (and closes) a duplicate; f.fd closes the original.
    const int dup_fd = ::fcntl(f.fd.get(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) throw fs::errno_error(repodata.string());
    __gnu_cxx::stdio_filebuf<char> buf(dup_fd, std::ios::in | std::ios::binary);
    std::istream in(&buf);
    GuardVersionReader reader;
    json::sax_parse(in, &reader);
    return reader.version;
}

std::int64_t previous_guard_version(const stdfs::path& old_repodata, const json& old_cache) {
    constexpr std::int64_t max_version = std::int64_t{1} << 53;  // exact in every JSON reader
    std::int64_t v = read_guard_version(old_repodata).value_or(0);
    if (auto it = old_cache.find("guard_version"); it != old_cache.end() && it->is_number_integer())
        v = std::max(v, it->get<std::int64_t>());
    if (v < 0 || v >= max_version) throw std::runtime_error(fmt::format("index version {} is out of range", v));
    return v;
}

SubdirReport index_subdir(const stdfs::path& dir, const std::string& subdir, const IndexOptions& opt) {
    SubdirReport report;
    report.subdir = subdir;
    report.repodata = dir / "repodata.json";

    std::vector<Candidate> cands;
    for (const auto& e : stdfs::directory_iterator(dir)) {
        const std::string fn = e.path().filename().string();
        if (!fn.ends_with(".conda") && !fn.ends_with(".tar.bz2")) continue;
        if (auto name = parse_package_file_name(fn)) {
            cands.push_back(Candidate{fn, std::move(*name), {}, {}, false, {}});
        } else {
            report.excluded.push_back({fn, "file name is not NAME-VERSION-BUILD.conda or .tar.bz2"});
        }
    }
    std::sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) { return a.fn < b.fn; });

    const stdfs::path cache_path = dir / index_cache_path;
    const stdfs::path cache_sig_path = cache_path.string() + ".sig";
    const std::string cache_bytes = read_small_file(cache_path, 512 << 20);
    const json old_cache = parse_or_null(cache_bytes);
    // Records are reused only from a trusted cache. The version counter is
    // read from any cache: an edit can only raise it (a loud error past the
    // range) or lower it (clients refuse the result as ROLLBACK).
    const bool cache_trusted = !opt.signing || cache_signed_by(cache_bytes, cache_sig_path, *opt.signing);
    const json cache_pkgs = cache_trusted && old_cache.is_object() && old_cache.value("format", 0) == 1 &&
                                    old_cache.contains("packages")
                                ? old_cache["packages"]
                                : json::object();

    parallel_for(cands.size(), opt.jobs,
                 [&](std::size_t i) { index_one(dir, subdir, cache_pkgs, opt.limits, cands[i]); });

    json packages = json::object(), packages_conda = json::object(), new_cache_pkgs = json::object();
    for (auto& c : cands) {
        if (c.problem) {
            report.excluded.push_back({c.fn, *c.problem});
            continue;
        }
        (c.scanned ? report.scanned : report.reused)++;
        new_cache_pkgs[c.fn] = {{"stamp", c.stamp.to_json()}, {"record", *c.record}};
        const stdfs::path sig_path = dir / (c.fn + ".sig");
        if (opt.signing && opt.signing->sign_packages && !is_plain_file(sig_path)) {
            auto digest = digest_from_hex((*c.record)["sha256"].get<std::string>());
            if (!digest) throw std::logic_error("indexed record has a malformed sha256");
            const auto sig = opt.signing->key->sign_digest(*digest);
            fs::write_atomic(sig_path, format_sig_file(opt.signing->key_name, sig), 0644, false);
            report.signed_packages.push_back(c.fn);
        }
        if (is_plain_file(sig_path)) (*c.record)["sig"] = ".";
        (c.name.format == PackageFormat::Conda ? packages_conda : packages)[c.fn] = std::move(*c.record);
        ++report.packages;
    }
    std::sort(report.excluded.begin(), report.excluded.end(),
              [](const auto& a, const auto& b) { return a.file < b.file; });

    json info = {{"subdir", subdir}};
    const stdfs::path sig_path = dir / "repodata.json.sig";
    std::int64_t guard_version = previous_guard_version(report.repodata, old_cache);
    if (opt.signing) {
        Guard g{opt.signing->channel_id, subdir, guard_version + 1, opt.signing->signed_at,
                opt.signing->signed_at + opt.signing->lifetime};
        info["guard"] = g.to_json();
        guard_version = g.version;
        report.guard = std::move(g);
    }
    const json repodata = {{"info", std::move(info)},
                           {"packages", std::move(packages)},
                           {"packages.conda", std::move(packages_conda)},
                           {"removed", json::array()},
                           {"repodata_version", 1}};
    const std::string bytes = repodata.dump(2, ' ', true) + "\n";
    fs::write_atomic(report.repodata, bytes, 0644, false);
    if (opt.signing) {
        const auto digest = sha256_bytes(bytes);
        fs::write_atomic(sig_path, format_sig_file(opt.signing->key_name, opt.signing->key->sign_digest(digest)), 0644,
                         false);
    } else if (::unlink(sig_path.c_str()) == 0) {
        report.removed_stale_signature = true;  // it signed other bytes
    }
    stdfs::create_directories(cache_path.parent_path());
    const std::string new_cache =
        json{{"format", 1}, {"guard_version", guard_version}, {"packages", std::move(new_cache_pkgs)}}.dump() + "\n";
    fs::write_atomic(cache_path, new_cache, 0644, false);
    if (opt.signing)
        fs::write_atomic(cache_sig_path,
                         format_sig_file(opt.signing->key_name, opt.signing->key->sign_digest(sha256_bytes(new_cache))),
                         0644, false);
    else
        ::unlink(cache_sig_path.c_str());
    return report;
}

}  // namespace

std::vector<SubdirReport> index_channel(const stdfs::path& channel, const IndexOptions& opt) {
    if (!stdfs::is_directory(channel)) throw std::runtime_error(channel.string() + ": not a directory");
    if (opt.signing && opt.signing->key == nullptr) throw std::logic_error("index signing without a key");
    std::vector<std::string> subdirs;
    for (const auto& e : stdfs::directory_iterator(channel)) {
        const std::string name = e.path().filename().string();
        if (!e.is_directory() || e.is_symlink() || !is_subdir_name(name)) continue;
        bool wanted = name == "noarch" || stdfs::exists(e.path() / "repodata.json");
        for (const auto& f : stdfs::directory_iterator(e.path())) {
            if (wanted) break;
            wanted = parse_package_file_name(f.path().filename().string()).has_value();
        }
        if (wanted) subdirs.push_back(name);
    }
    if (std::find(subdirs.begin(), subdirs.end(), "noarch") == subdirs.end()) {
        stdfs::create_directories(channel / "noarch");
        subdirs.push_back("noarch");
    }
    std::sort(subdirs.begin(), subdirs.end());
    std::vector<SubdirReport> reports;
    for (const auto& s : subdirs) reports.push_back(index_subdir(channel / s, s, opt));
    return reports;
}

}  // namespace condaguard
