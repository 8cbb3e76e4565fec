#include <condaguard/channel/verify.hpp>
#include <condaguard/channel/layout.hpp>
#include <condaguard/channel/state.hpp>
#include <condaguard/package/archive.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/parallel.hpp>

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace condaguard {

namespace stdfs = std::filesystem;

namespace od = simdjson::ondemand;

// The index's own private copy (never a mapping of a file others may
// change), the parser whose buffers unescaped strings live in, and the
// records: views into those two.
struct IndexData {
    simdjson::padded_string bytes;
    od::parser parser;
    std::vector<IndexRecord> records;
};

std::vector<Result> ChannelReport::all() const {
    std::vector<Result> out;
    for (const auto& s : subdirs) {
        out.push_back(s.index);
        out.insert(out.end(), s.packages.begin(), s.packages.end());
    }
    return out;
}

std::span<const IndexRecord> VerifiedIndex::records() const {
    return data ? std::span<const IndexRecord>(data->records) : std::span<const IndexRecord>();
}

namespace {

// Reads the whole index once into a private padded buffer; a second thread
// hashes each chunk as soon as it has been read, so the digest is ready
// when the last byte arrives.
Sha256Digest read_hashed(const stdfs::path& path, std::uint64_t cap, simdjson::padded_string& out) {
    const fs::OpenedFile f = fs::open_untrusted(path);
    const fs::Fd& fd = f.fd;
    const struct stat& st = f.st;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    if (size > cap)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("{}: index is {} bytes, over the limit of {}", path.string(), size, cap));
    out = simdjson::padded_string(static_cast<std::size_t>(size));
    constexpr std::size_t done_flag = ~std::size_t{0};  // the reader stopped early (error)
    std::atomic<std::size_t> ready{0};
    int read_errno = 0;
    std::jthread reader([&] {
        std::size_t done = 0;
        while (done < size) {
            ssize_t n = ::read(fd.get(), out.data() + done, std::min<std::size_t>(size - done, hash_chunk_bytes));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                read_errno = n < 0 ? errno : 0;
                ready.store(done_flag, std::memory_order_release);
                ready.notify_one();
                return;
            }
            done += static_cast<std::size_t>(n);
            ready.store(done, std::memory_order_release);
            ready.notify_one();
        }
    });
    Sha256 h;
    std::size_t hashed = 0;
    while (hashed < size) {
        std::size_t r;
        while ((r = ready.load(std::memory_order_acquire)) == hashed) ready.wait(hashed, std::memory_order_acquire);
        if (r == done_flag) break;
        h.update({reinterpret_cast<const unsigned char*>(out.data() + hashed), r - hashed});
        hashed = r;
    }
    reader.join();
    if (hashed != size) {
        if (read_errno != 0) throw std::system_error(read_errno, std::generic_category(), path.string());
        throw std::runtime_error(path.string() + ": file shrank while being read");
    }
    char extra;
    if (::read(fd.get(), &extra, 1) != 0) throw std::runtime_error(path.string() + ": file grew while being read");
    return h.finish();
}

// A string value as a view: into the document itself when it has no
// escapes (no copy), else unescaped into the parser's buffer.
std::string_view string_of(od::value v) {
    std::string_view tok = v.raw_json_token();
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\n' || tok.back() == '\r' || tok.back() == '\t'))
        tok.remove_suffix(1);
    if (tok.size() < 2 || tok.front() != '"' || tok.back() != '"') throw simdjson::simdjson_error(simdjson::INCORRECT_TYPE);
    tok = tok.substr(1, tok.size() - 2);
    if (tok.find('\\') != tok.npos) return v.get_string();
    return tok;
}

// A small JSON value (the info object) in nlohmann's form; nesting is bounded.
nlohmann::json to_json(od::value v, int depth) {
    if (depth > 8) throw simdjson::simdjson_error(simdjson::DEPTH_ERROR);
    switch (v.type()) {
    case od::json_type::object: {
        nlohmann::json j = nlohmann::json::object();
        for (auto f : v.get_object()) {
            const std::string key(f.unescaped_key().value());
            j[key] = to_json(f.value(), depth + 1);
        }
        return j;
    }
    case od::json_type::array: {
        nlohmann::json j = nlohmann::json::array();
        for (auto e : v.get_array()) j.push_back(to_json(e.value(), depth + 1));
        return j;
    }
    case od::json_type::string: return std::string(v.get_string().value());
    case od::json_type::boolean: return v.get_bool().value();
    case od::json_type::null: return nullptr;
    case od::json_type::number:
        if (v.get_number_type() == od::number_type::signed_integer) return v.get_int64().value();
        if (v.get_number_type() == od::number_type::unsigned_integer) return v.get_uint64().value();
        return v.get_double().value();
    }
    throw simdjson::simdjson_error(simdjson::INCORRECT_TYPE);
}

// Throws simdjson_error on a type mismatch (a signed but malformed index).
void parse_records(od::object packages, std::vector<IndexRecord>& out) {
    for (auto field : packages) {
        IndexRecord r;
        r.fn = field.unescaped_key();
        for (auto f : field.value().get_object()) {
            const od::raw_json_string k = f.key();
            if (k == "sha256") r.sha256 = string_of(f.value());
            else if (k == "md5") r.md5 = string_of(f.value());
            else if (k == "size") r.size = f.value().get_uint64(), r.has_size = true;
            else if (k == "name") r.name = string_of(f.value());
            else if (k == "version") r.version = string_of(f.value());
            else if (k == "build") r.build = string_of(f.value());
            else if (k == "subdir") r.subdir = string_of(f.value());
        }
        out.push_back(r);
    }
}

std::string time_or(const std::optional<SeenIndex>& s) { return s && !s->signed_at.empty() ? s->signed_at : "?"; }

}  // namespace

VerifiedIndex verify_index(const stdfs::path& dir, const std::string& subdir, const std::string& location,
                           Verifier& verifier, StateStore& state, const ChannelPolicy& policy) {
    VerifiedIndex out;
    const stdfs::path path = dir / "repodata.json";
    Result& r = out.result;
    r.path = path.string();
    auto data = std::make_shared<IndexData>();
    try {
        const Sha256Digest digest = read_hashed(path, policy.max_index_bytes, data->bytes);
        const stdfs::path sig_path = dir / "repodata.json.sig";
        struct stat st {};
        if (::lstat(sig_path.c_str(), &st) != 0) {
            const auto was = state.channel_at(location);
            const auto known = policy.channel_id ? state.seen(*policy.channel_id, subdir) : std::nullopt;
            r.verdict = Verdict::MissingSig;
            if (was || known)
                r.reason = fmt::format("{}: index is unsigned, but channel '{}' was signed here before: refusing the "
                                       "downgrade",
                                       sig_path.string(), was ? *was : *policy.channel_id);
            else
                r.reason = sig_path.string() + ": index is not signed";
            return out;
        }
        r = verifier.verify_digest(digest, sig_path, path.string());
        if (r.verdict != Verdict::Valid) return out;

        // The bytes are authentic: now read them.
        od::document doc = data->parser.iterate(data->bytes);
        auto info_value = doc["info"];
        if (info_value.error() || info_value.type() != od::json_type::object)
            throw VerdictError(Verdict::Invalid, path.string() + ": info is not a JSON object");
        // info is small: hold it in the general JSON library's form.
        const auto info_json = to_json(info_value.value(), 0);
        if (info_json.value("subdir", "") != subdir)
            throw VerdictError(Verdict::Invalid,
                               fmt::format("{}: info.subdir is '{}', expected '{}'", path.string(),
                                           info_json.value("subdir", ""), subdir));
        if (!info_json.contains("guard"))
            throw VerdictError(Verdict::Invalid, path.string() + ": signed index has no info.guard");
        Guard g;
        try {
            g = Guard::from_json(info_json["guard"]);
        } catch (const std::invalid_argument& e) {
            throw VerdictError(Verdict::Invalid, path.string() + ": " + e.what());
        }
        if (g.subdir != subdir)
            throw VerdictError(Verdict::Invalid, fmt::format("{}: index is signed for subdir '{}', found in '{}'",
                                                             path.string(), g.subdir, subdir));
        if (policy.channel_id && g.channel != *policy.channel_id)
            throw VerdictError(Verdict::Invalid, fmt::format("{}: index is for channel '{}', expected '{}'",
                                                             path.string(), g.channel, *policy.channel_id));
        if (auto was = state.channel_at(location); was && *was != g.channel)
            throw VerdictError(Verdict::Invalid,
                               fmt::format("{}: this location served channel '{}' before, now '{}' (reset with "
                                           "'conda-guard state reset {}')",
                                           path.string(), *was, g.channel, *was));
        if (g.expires <= policy.now && !policy.allow_expired)
            throw VerdictError(Verdict::Expired, fmt::format("{}: index expired at {} (signed {}, version {})",
                                                             path.string(), format_time(g.expires),
                                                             format_time(g.signed_at), g.version));
        const auto seen = state.seen(g.channel, subdir);
        const std::string hex = to_hex(digest);
        if (seen && g.version < seen->version)
            throw VerdictError(Verdict::Rollback,
                               fmt::format("{}: index version {} is older than version {} seen before (signed {})",
                                           path.string(), g.version, seen->version, time_or(seen)));
        if (seen && g.version == seen->version && !seen->sha256.empty() && seen->sha256 != hex)
            throw VerdictError(Verdict::Invalid,
                               fmt::format("{}: a different index with the same version {} was seen before",
                                           path.string(), g.version));

        // A record takes well over 100 bytes of JSON: reserve once (pages
        // not written are never touched) instead of regrowing and copying.
        data->records.reserve(data->bytes.size() / 100 + 16);
        for (const char* key : {"packages", "packages.conda"}) {
            auto v = doc[key];
            if (v.error() == simdjson::NO_SUCH_FIELD) continue;
            parse_records(v.get_object(), data->records);
        }
        state.record(location, g.channel, subdir, SeenIndex{g.version, hex, format_time(g.signed_at)});
        r.reason = fmt::format("channel '{}' version {}, expires {}{}; signed by {} ({})", g.channel, g.version,
                               format_time(g.expires),
                               g.expires <= policy.now ? " (EXPIRED, accepted by --allow-expired)" : "",
                               r.key.value_or("?"), r.fingerprint.value_or("?"));
        out.guard = std::move(g);
        out.data = std::move(data);
    } catch (const VerdictError& e) {
        r.verdict = e.verdict();
        r.reason = e.what();
    } catch (const simdjson::simdjson_error& e) {
        r.verdict = Verdict::Invalid;
        r.reason = fmt::format("{}: signed index is not valid repodata JSON: {}", path.string(), e.what());
    } catch (const std::exception& e) {
        r.verdict = Verdict::Error;
        r.reason = e.what();
    }
    if (r.verdict != Verdict::Valid) out.data.reset();
    return out;
}

namespace {

Result check_package(const stdfs::path& dir, const std::string& subdir, const IndexRecord& rec, Verifier& verifier) {
    const std::string fn(rec.fn);
    const stdfs::path path = dir / fn;
    Result r{.path = path.string()};
    auto invalid = [](const std::string& why) { return VerdictError(Verdict::Invalid, why); };
    guarded(r, [&] {
        const auto name = parse_package_file_name(fn);
        if (!name) throw invalid("record key is not a package file name");
        if (rec.name != name->name || rec.version != name->version || rec.build != name->build)
            throw invalid("record's name, version or build disagrees with the file name");
        if (rec.sha256.empty()) throw invalid("record has no sha256 (md5-only records are refused)");
        if (!rec.has_size) throw invalid("record has no size");
        const auto trusted = trusted_record_from_hex(rec.size, rec.sha256, rec.md5);
        if (!trusted) throw invalid("record's sha256 or md5 is not a hex digest");
        fs::OpenedFile f;
        try {
            f = fs::open_untrusted(path);
        } catch (const fs::NotRegularFile& e) {
            if (e.kind() != fs::FileKind::Missing) throw;
            throw VerdictError(Verdict::Error, "listed in the signed index but missing");
        }
        // Never decompressed before its size and digests match the record.
        const PackageScan scan = scan_trusted_package(f.fd.get(), *name, *trusted);
        if (!scan.index_json) throw invalid("archive has no info/index.json");
        if (auto why = identity_mismatch(*scan.index_json, *name, subdir)) throw invalid(*why);
        stdfs::path sig = path;
        sig += ".sig";
        r = verifier.verify_digest(scan.sha256, sig, path.string());
    });
    return r;
}

}  // namespace

ChannelReport verify_channel(const stdfs::path& channel, Verifier& verifier, StateStore& state,
                                   const ChannelPolicy& policy) {
    if (!stdfs::is_directory(channel)) throw std::runtime_error(channel.string() + ": not a directory");
    const std::string location = stdfs::weakly_canonical(stdfs::absolute(channel)).string();
    std::vector<std::string> subdirs;
    for (const auto& e : stdfs::directory_iterator(channel)) {
        const std::string name = e.path().filename().string();
        if (e.is_directory() && !e.is_symlink() && is_subdir_name(name) && stdfs::exists(e.path() / "repodata.json"))
            subdirs.push_back(name);
    }
    if (subdirs.empty()) throw std::runtime_error(channel.string() + ": no SUBDIR/repodata.json here");
    std::sort(subdirs.begin(), subdirs.end());
    ChannelReport report;
    for (const auto& s : subdirs) {
        VerifiedIndex idx = verify_index(channel / s, s, location, verifier, state, policy);
        SubdirFindings& found = report.subdirs.emplace_back(SubdirFindings{s, idx.result, {}});
        if (idx.result.verdict != Verdict::Valid || policy.index_only) continue;
        std::vector<IndexRecord> recs(idx.records().begin(), idx.records().end());
        std::sort(recs.begin(), recs.end(), [](const auto& a, const auto& b) { return a.fn < b.fn; });
        std::vector<Result> pkg(recs.size());
        parallel_for(recs.size(), policy.jobs,
                     [&](std::size_t i) { pkg[i] = check_package(channel / s, s, recs[i], verifier); });
        found.packages = std::move(pkg);
    }
    return report;
}

}  // namespace condaguard
