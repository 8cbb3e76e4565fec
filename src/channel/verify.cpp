#include <condaguard/channel/verify.hpp>
#include <condaguard/channel/layout.hpp>
#include <condaguard/channel/state.hpp>
#include <condaguard/package/archive.hpp>

#include <condaguard/sys/fs.hpp>
#include <condaguard/sys/json.hpp>
#include <condaguard/sys/parallel.hpp>

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace condaguard {

namespace stdfs = std::filesystem;

namespace od = simdjson::ondemand;

// The index's own private copy (never a mapping of a file others may
// change), the parser whose string buffer holds the strings that had escapes,
// the records (views into those two) and the info object.
struct IndexData {
    simdjson::padded_string bytes;
    od::parser parser;
    std::vector<IndexRecord> records;
    nlohmann::json info;
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

[[noreturn]] void malformed(const std::string& why) { throw VerdictError(Verdict::Invalid, "signed index: " + why); }

void check(simdjson::error_code e) {
    if (e != simdjson::SUCCESS) malformed(fmt::format("not valid JSON: {}", simdjson::error_message(e)));
}

// ---- parsing: one walk over simdjson's On-Demand iterator, explicit stack --

// simdjson's On-Demand front end: stage 1 (SIMD, chosen at run time) finds
// every structural character of the document, then the walk below pulls the
// tokens in order; no tape is built. A string without a backslash is used as
// a view into the document itself; only strings with escapes are unescaped
// (into the parser's buffer, which lives as long as the parser), which also
// checks their escapes. Stage 1 has already checked UTF-8, unescaped control
// characters and string ends for the whole document; every scalar is parsed
// (numbers, true, false, null), so a malformed value anywhere is refused as
// the DOM parser would refuse it.

// Where a container sits, for the records it may hold.
enum class Role : unsigned char { Other, Top, Packages, Record };

// The text between the quotes of a string starting right after its opening
// quote, as a view into the document, when it holds no escape. Stage 1 has
// checked that every string ends inside the document; the scan reads 8 bytes
// at a time (a padded_string has SIMDJSON_PADDING bytes after the end) and
// never starts a word past the document's end.
std::optional<std::string_view> plain_string(const char* after_quote, const char* doc_end) {
    constexpr std::uint64_t low7 = 0x7f7f7f7f7f7f7f7f, ones = 0x0101010101010101;
    // The high bit of each byte of `x` that is zero, and of no other byte.
    auto zero_bytes = [](std::uint64_t x) { return ~(((x & low7) + low7) | x | low7); };
    for (const char* p = after_quote; p < doc_end; p += 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        const std::uint64_t m = zero_bytes(w ^ (ones * '"')) | zero_bytes(w ^ (ones * '\\'));
        if (m == 0) continue;
        const int first = std::endian::native == std::endian::little ? std::countr_zero(m) : std::countl_zero(m);
        const char* at = p + first / 8;
        if (*at == '\\') return std::nullopt;
        return std::string_view(after_quote, static_cast<std::size_t>(at - after_quote));
    }
    malformed("not valid JSON: unterminated string");
}

// Duplicate keys: a DuplicateKeyFinder (sys/json.hpp) over views of the
// keys (into the document, or the parser's buffer for keys with escapes,
// both alive for the whole walk). Only objects are opened in it.
using KeyFinder = DuplicateKeyFinder<std::hash<std::string_view>, ViewedKeys>;

// One open object or array. Its iterator is advanced only once the value it
// handed out (and everything nested in it) has been walked, as On-Demand
// requires: the stack holds exactly the iterators a recursive walk would.
struct Frame {
    bool is_object = false;
    bool started = false;           // an element was handed out: advance before the next
    Role role = Role::Other;
    od::object_iterator oit, oend;
    od::array_iterator ait, aend;
    std::string_view under;         // the key this container is the value of (for messages)
    std::size_t record = 0;         // Role::Record: index into the records
    nlohmann::json* copy = nullptr; // inside "info": where this container's copy is built
};

class Walker {
public:
    Walker(std::vector<IndexRecord>& records, nlohmann::json& info, const char* doc_end)
        : records_(records), info_(info), doc_end_(doc_end) {
        stack_.reserve(max_json_depth);
    }

    // Checks the whole document (every scalar parsed, nesting at most
    // max_json_depth, no object holding a key twice, compared unescaped),
    // collects the records of "packages" and "packages.conda", and copies
    // "info" into nlohmann's form.
    void walk(od::document& doc, const std::atomic<bool>& cancelled) {
        od::json_type t{};
        check(doc.type().get(t));
        if (t != od::json_type::object) malformed("the document is not a JSON object");
        od::object top;
        check(doc.get_object().get(top));
        push_object(top, Role::Top, "", nullptr);
        while (!stack_.empty()) {
            Frame& f = stack_.back();
            if (f.is_object) {
                if (f.started) ++f.oit;
                f.started = true;
                if (!(f.oit != f.oend)) {
                    unique([&] { keys_.close(); });  // before the pop: where() names this object
                    stack_.pop_back();
                    continue;
                }
                od::field kv;
                check((*f.oit).get(kv));
                const std::string_view key = key_of(kv);
                unique([&] { keys_.key(key); });
                field(f, key, kv.value(), cancelled);  // may push: `f` is not used after this
            } else {
                if (f.started) ++f.ait;
                f.started = true;
                if (!(f.ait != f.aend)) {
                    stack_.pop_back();
                    continue;
                }
                od::value v;
                check((*f.ait).get(v));
                nlohmann::json* slot = f.copy != nullptr ? &f.copy->emplace_back() : nullptr;
                value(v, "[]", slot);
            }
        }
        // Past the top-level object's end there must be nothing (On-Demand
        // only checked that the last token is a '}').
        const char* rest = nullptr;
        if (doc.current_location().get(rest) != simdjson::OUT_OF_BOUNDS)
            malformed("not valid JSON: more after the top-level object");
        if (!saw_info_) malformed("info is not a JSON object");
    }

private:
    std::string where() const {
        std::string w;
        for (const auto& f : stack_) {
            if (f.role == Role::Top) continue;
            if (!w.empty()) w += '/';
            w += f.under;
        }
        return w.empty() ? "the top level" : w;
    }

    std::string_view key_of(od::field& kv) {
        if (auto plain = plain_string(kv.key().raw(), doc_end_)) return *plain;
        std::string_view k;
        check(kv.unescaped_key().get(k));
        return k;
    }

    std::string_view string_of(od::value& v) {
        if (auto plain = plain_string(v.raw_json_token().data() + 1, doc_end_)) return *plain;
        std::string_view s;
        check(v.get_string().get(s));
        return s;
    }

    // Runs a step of the duplicate-key finder; a repeated key is INVALID,
    // naming where it is.
    template <class F>
    void unique(F&& step) {
        try {
            step();
        } catch (const JsonError& e) {
            malformed(fmt::format("{} in {}", e.what(), where()));
        }
    }

    void field(Frame& f, std::string_view key, od::value v, const std::atomic<bool>& cancelled) {
        switch (f.role) {
        case Role::Top:
            if (key == "packages" || key == "packages.conda") {
                push_object(object_of(v, "", key), Role::Packages, key, nullptr);
                return;
            }
            if (key == "info") {
                od::json_type t{};
                check(v.type().get(t));
                if (t != od::json_type::object) malformed("info is not a JSON object");
                saw_info_ = true;
                info_ = nlohmann::json::object();
                push_object(object_of(v, "", key), Role::Other, key, &info_);
                return;
            }
            break;
        case Role::Packages: {
            const od::object rec = object_of(v, f.under, key);
            if (cancelled.load(std::memory_order_relaxed)) throw std::runtime_error("cancelled");
            const std::size_t i = records_.size();
            records_.push_back(IndexRecord{.fn = key});
            push_object(rec, Role::Record, key, nullptr);
            stack_.back().record = i;
            return;
        }
        case Role::Record:
            if (record_field(records_[f.record], key, v)) return;
            break;
        case Role::Other: break;
        }
        value(v, key, f.copy != nullptr ? &(*f.copy)[std::string(key)] : nullptr);
    }

    // `v` as an object; else INVALID naming it as PARENT/KEY.
    static od::object object_of(od::value& v, std::string_view parent, std::string_view key) {
        od::json_type t{};
        check(v.type().get(t));
        if (t != od::json_type::object)
            malformed(parent.empty() ? fmt::format("'{}' is not an object", key)
                                     : fmt::format("{}/{} is not an object", parent, key));
        od::object o;
        check(v.get_object().get(o));
        return o;
    }

    // A field the records keep; false for any other (walked as any value).
    bool record_field(IndexRecord& r, std::string_view key, od::value& v) {
        std::string_view* to = nullptr;
        if (key == "sha256") to = &r.sha256;
        else if (key == "md5") to = &r.md5;
        else if (key == "name") to = &r.name;
        else if (key == "version") to = &r.version;
        else if (key == "build") to = &r.build;
        else if (key == "subdir") to = &r.subdir;
        else if (key == "size") {
            if (v.get_uint64().get(r.size) != simdjson::SUCCESS)
                malformed(fmt::format("{}/size is not a non-negative integer", r.fn));
            r.has_size = true;
            return true;
        } else {
            return false;
        }
        od::json_type t{};
        check(v.type().get(t));
        if (t != od::json_type::string) malformed(fmt::format("{}/{} is not a string", r.fn, key));
        *to = string_of(v);
        return true;
    }

    // Any value: containers are pushed, scalars parsed (and copied to `slot`).
    void value(od::value& v, std::string_view under, nlohmann::json* slot) {
        od::json_type t{};
        check(v.type().get(t));
        switch (t) {
        case od::json_type::object: {
            od::object o;
            check(v.get_object().get(o));
            if (slot != nullptr) *slot = nlohmann::json::object();
            push_object(o, Role::Other, under, slot);
            return;
        }
        case od::json_type::array: {
            od::array a;
            check(v.get_array().get(a));
            if (slot != nullptr) *slot = nlohmann::json::array();
            push_array(a, under, slot);
            return;
        }
        case od::json_type::string: {
            const std::string_view s = string_of(v);
            if (slot != nullptr) *slot = std::string(s);
            return;
        }
        case od::json_type::number: {
            od::number n;
            check(v.get_number().get(n));
            if (slot == nullptr) return;
            switch (n.get_number_type()) {
            case od::number_type::signed_integer: *slot = n.get_int64(); return;
            case od::number_type::unsigned_integer: *slot = n.get_uint64(); return;
            case od::number_type::floating_point_number: *slot = n.get_double(); return;
            }
            return;
        }
        case od::json_type::boolean: {
            bool b = false;
            check(v.get_bool().get(b));
            if (slot != nullptr) *slot = b;
            return;
        }
        case od::json_type::null: {
            bool is_null = false;
            check(v.is_null().get(is_null));
            if (!is_null) check(simdjson::N_ATOM_ERROR);
            if (slot != nullptr) *slot = nullptr;
            return;
        }
        }
    }

    void enter() {
        if (stack_.size() >= max_json_depth) malformed(fmt::format("not valid JSON: {}", too_deep_message(max_json_depth)));
    }

    void push_object(od::object o, Role role, std::string_view under, nlohmann::json* copy) {
        enter();
        Frame& f = stack_.emplace_back();
        f.is_object = true;
        f.role = role;
        f.under = under;
        f.copy = copy;
        keys_.open();
        check(o.begin().get(f.oit));
        check(o.end().get(f.oend));
    }

    void push_array(od::array a, std::string_view under, nlohmann::json* copy) {
        enter();
        Frame& f = stack_.emplace_back();
        f.under = under;
        f.copy = copy;
        check(a.begin().get(f.ait));
        check(a.end().get(f.aend));
    }

    std::vector<IndexRecord>& records_;
    nlohmann::json& info_;
    const char* doc_end_;
    bool saw_info_ = false;
    std::vector<Frame> stack_;
    KeyFinder keys_;
};

// Parses the whole index into `data`: any JSON error, a depth past the cap,
// a repeated key anywhere, or a record of the wrong shape is INVALID.
void parse_index(IndexData& data, const std::atomic<bool>& cancelled) {
    // simdjson counts the document itself as a level and asserts (in debug
    // builds; in release it would index past its arrays) that no iterator
    // goes as deep as its max_depth: give it room, the walk enforces ours.
    check(data.parser.allocate(data.bytes.size(), max_json_depth + 2));
    od::document doc;
    check(data.parser.iterate(data.bytes).get(doc));
    // A record takes well over 100 bytes of JSON: reserve once (pages
    // not written are never touched) instead of regrowing and copying.
    data.records.reserve(data.bytes.size() / 100 + 16);
    Walker(data.records, data.info, data.bytes.data() + data.bytes.size()).walk(doc, cancelled);
}

// ---- step 1: read and hash (and parse, see below) ------------------------

fs::OpenedFile open_index(int dirfd, const stdfs::path& path, std::uint64_t cap) {
    fs::OpenedFile f = fs::open_untrusted_at(dirfd, repodata_name, path);
    const auto size = static_cast<std::uint64_t>(f.st.st_size);
    if (size > cap) throw VerdictError(Verdict::Invalid, fmt::format("index is {} bytes, over the limit of {}", size, cap));
    return f;
}

struct ReadIndex {
    Sha256Digest digest{};
    std::exception_ptr parse_failure;  // why the bytes are not a valid index
};

// Reads the whole index once into a private padded buffer; the calling
// thread hashes each chunk as soon as it has been read, so the digest is
// ready when the last byte arrives.
//
// Once every byte is in, the reading thread parses them while the hash
// finishes. This is safe because nothing parsed is used, trusted or even
// reported before the signature over the digest verifies: the parse writes
// only into `data` (private to this call) and `parse_failure`, and the caller
// looks at neither unless verify_digest said VALID; on any other verdict both
// are thrown away. The parser only ever sees at most the size cap, nests at
// most max_json_depth deep (its stack is fixed, not recursive), and is the
// same code that would parse the bytes after authentication. What it buys:
// the parse overlaps the hash instead of following it.
ReadIndex read_hash_parse(const fs::OpenedFile& f, IndexData& data) {
    const auto size = static_cast<std::size_t>(f.st.st_size);
    data.bytes = simdjson::padded_string(size);
    constexpr std::size_t done_flag = ~std::size_t{0};  // the reader stopped early (error)
    std::atomic<std::size_t> ready{0};
    std::atomic<bool> cancelled{false};
    int read_errno = 0;
    ReadIndex out;
    std::jthread reader([&] {
        std::size_t done = 0;
        while (done < size) {
            ssize_t n = ::read(f.fd.get(), data.bytes.data() + done, std::min<std::size_t>(size - done, hash_chunk_bytes));
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
        try {
            parse_index(data, cancelled);
        } catch (...) {
            out.parse_failure = std::current_exception();
        }
    });
    Sha256 h;
    std::size_t hashed = 0;
    while (hashed < size) {
        std::size_t r;
        while ((r = ready.load(std::memory_order_acquire)) == hashed) ready.wait(hashed, std::memory_order_acquire);
        if (r == done_flag) break;
        h.update({reinterpret_cast<const unsigned char*>(data.bytes.data() + hashed), r - hashed});
        hashed = r;
    }
    if (hashed != size) cancelled.store(true);
    reader.join();
    if (hashed != size) {
        if (read_errno != 0) throw std::system_error(read_errno, std::generic_category(), "read");
        throw std::runtime_error("file shrank while being read");
    }
    char extra;
    if (::read(f.fd.get(), &extra, 1) != 0) throw std::runtime_error("file grew while being read");
    out.digest = h.finish();
    return out;
}

// ---- step 2: the signature -----------------------------------------------

std::string time_or(const std::optional<SeenIndex>& s) { return s && !s->signed_at.empty() ? s->signed_at : "?"; }

// The channel that was seen signed at this location or under the expected id, if any.
std::optional<std::string> signed_before(const std::string& location, const std::string& subdir, StateStore& state,
                                         const ChannelPolicy& policy) {
    if (auto was = state.channel_at(location)) return was;
    if (policy.channel_id && state.seen(*policy.channel_id, subdir)) return policy.channel_id;
    return std::nullopt;
}

// MISSING_SIG for an index without repodata.json.sig; a downgrade when it was signed before.
VerdictError unsigned_index(const std::string& location, const std::string& subdir, StateStore& state,
                            const ChannelPolicy& policy) {
    if (auto was = signed_before(location, subdir, state, policy))
        return VerdictError(Verdict::MissingSig,
                            fmt::format("index is unsigned (no {}), but channel '{}' was signed here before: refusing "
                                        "the downgrade",
                                        repodata_sig_name, *was));
    return VerdictError(Verdict::MissingSig, fmt::format("index is not signed (no {})", repodata_sig_name));
}

// ---- step 3: the guard fields --------------------------------------------

Guard check_guard(const nlohmann::json& info, const std::string& subdir, const std::string& location,
                  StateStore& state, const ChannelPolicy& policy) {
    const std::string info_subdir = info.value("subdir", "");
    if (info_subdir != subdir)
        throw VerdictError(Verdict::Invalid, fmt::format("info.subdir is '{}', expected '{}'", info_subdir, subdir));
    if (!info.contains("guard")) throw VerdictError(Verdict::Invalid, "signed index has no info.guard");
    Guard g;
    try {
        g = Guard::from_json(info["guard"]);
    } catch (const std::invalid_argument& e) {
        throw VerdictError(Verdict::Invalid, e.what());
    }
    if (g.subdir != subdir)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("index is signed for subdir '{}', found in '{}'", g.subdir, subdir));
    if (policy.channel_id && g.channel != *policy.channel_id)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("index is for channel '{}', expected '{}'", g.channel, *policy.channel_id));
    if (auto was = state.channel_at(location); was && *was != g.channel)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("this location served channel '{}' before, now '{}' (reset with "
                                       "'conda-guard state reset {}')",
                                       *was, g.channel, *was));
    if (g.expires <= policy.now && !policy.allow_expired)
        throw VerdictError(Verdict::Expired, fmt::format("index expired at {} (signed {}, version {})",
                                                         format_time(g.expires), format_time(g.signed_at), g.version));
    return g;
}

// ---- step 4: what the state remembers ------------------------------------

void check_state(const Guard& g, const std::string& subdir, const std::string& hex, StateStore& state) {
    const auto seen = state.seen(g.channel, subdir);
    if (seen && g.version < seen->version)
        throw VerdictError(Verdict::Rollback, fmt::format("index version {} is older than version {} seen before (signed {})",
                                                          g.version, seen->version, time_or(seen)));
    if (seen && g.version == seen->version && !seen->sha256.empty() && seen->sha256 != hex)
        throw VerdictError(Verdict::Invalid,
                           fmt::format("a different index with the same version {} was seen before", g.version));
}

// Authenticates and parses DIR/repodata.json, DIR open as `dirfd`.
// `remembered`: this subdir was seen signed at this location before.
VerifiedIndex verify_index_at(int dirfd, const stdfs::path& dir, const std::string& subdir,
                              const std::string& location, bool remembered, Verifier& verifier, StateStore& state,
                              const ChannelPolicy& policy) {
    VerifiedIndex out;
    const stdfs::path path = dir / repodata_name;
    const stdfs::path sig_path = dir / repodata_sig_name;
    Result& r = out.result;
    r.path = path.string();
    auto data = std::make_shared<IndexData>();
    guarded(r, [&] {
        fs::OpenedFile f;
        try {
            f = open_index(dirfd, path, policy.max_index_bytes);
        } catch (const fs::NotRegularFile& e) {
            if (e.kind() != fs::FileKind::Missing || !remembered) throw;
            throw VerdictError(Verdict::MissingSig,
                               fmt::format("index is missing, but subdir {} was signed here before", subdir));
        }
        if (fs::kind_at(dirfd, repodata_sig_name) == fs::FileKind::Missing)
            throw unsigned_index(location, subdir, state, policy);
        const ReadIndex read = read_hash_parse(f, *data);
        r = verifier.verify_digest_at(read.digest, dirfd, repodata_sig_name, sig_path, path.string());
        if (r.verdict != Verdict::Valid) return;
        // The bytes are authentic: only now is what was parsed looked at.
        if (read.parse_failure) std::rethrow_exception(read.parse_failure);
        Guard g = check_guard(data->info, subdir, location, state, policy);
        const std::string hex = to_hex(read.digest);
        check_state(g, subdir, hex, state);
        state.record(location, g.channel, subdir, SeenIndex{g.version, hex, format_time(g.signed_at)});
        r.reason = fmt::format("channel '{}' version {}, expires {}{}; signed by {} ({})", g.channel, g.version,
                               format_time(g.expires),
                               g.expires <= policy.now ? " (EXPIRED, accepted by --allow-expired)" : "",
                               r.key.value_or("?"), r.fingerprint.value_or("?"));
        out.guard = std::move(g);
        out.data = std::move(data);
    });
    if (r.verdict != Verdict::Valid) {
        out.data.reset();
        out.guard.reset();
    }
    return out;
}

}  // namespace

VerifiedIndex verify_index(const stdfs::path& dir, const std::string& subdir, const std::string& location,
                           Verifier& verifier, StateStore& state, const ChannelPolicy& policy) {
    fs::Fd dirfd;
    VerifiedIndex out;
    out.result.path = (dir / repodata_name).string();
    guarded(out.result, [&] { dirfd = fs::open_dir(dir); });
    if (!dirfd) return out;
    const auto remembered = state.subdirs_at(location);
    return verify_index_at(dirfd.get(), dir, subdir, location,
                           std::find(remembered.begin(), remembered.end(), subdir) != remembered.end(), verifier,
                           state, policy);
}

namespace {

// ---- verify_channel: which subdirs, and what each one is -----------------

// The subdirs to check: every one this location was seen signed with, and
// every entry of the directory with a subdir's name that is a directory
// holding a repodata.json or a symbolic link (refused below, never skipped).
std::set<std::string> subdirs_to_check(int rootfd, const stdfs::path& channel, const std::vector<std::string>& remembered) {
    std::set<std::string> names(remembered.begin(), remembered.end());
    for (const auto& name : fs::list_dir(rootfd, channel.string())) {
        if (!is_subdir_name(name)) continue;
        const fs::FileKind k = fs::kind_at(rootfd, name);
        if (k == fs::FileKind::Symlink) names.insert(name);
        if (k == fs::FileKind::Directory && fs::kind_at(rootfd, name + "/" + repodata_name) != fs::FileKind::Missing)
            names.insert(name);
    }
    return names;
}

// The finding for a subdir that cannot be opened as a directory of its own.
Result unusable_subdir(const stdfs::path& channel, const std::string& name, fs::FileKind kind, bool remembered,
                       const std::optional<std::string>& channel_id) {
    const std::string before =
        remembered ? fmt::format("; channel '{}' was signed here before", channel_id.value_or("?")) : std::string();
    Result r{.path = (channel / name / repodata_name).string()};
    if (kind == fs::FileKind::Missing) {
        // Gone: nothing signs it any more, as with a removed signature.
        r.verdict = Verdict::MissingSig;
        r.reason = fmt::format("subdir {} is gone{}", name, before);
    } else {
        // Something in its place that is not the subdir: not a missing signature but a wrong object.
        r.verdict = Verdict::Invalid;
        r.reason = kind == fs::FileKind::Symlink
                       ? fmt::format("subdir {} is a symbolic link (subdirs are never followed){}", name, before)
                       : fmt::format("subdir {} is {}, not a directory{}", name, fs::describe(kind), before);
    }
    return r;
}

// One record of a verified index against the file it names in DIR, open as
// `dirfd` (the descriptor the index was read through): the package and its
// .sig are opened inside it (openat, O_NOFOLLOW), so a subdir replaced by a
// link after its index was checked is never followed.
Result check_package(int dirfd, const stdfs::path& dir, const std::string& subdir, const IndexRecord& rec,
                     Verifier& verifier) {
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
            f = fs::open_untrusted_at(dirfd, fn, path);
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
        r = verifier.verify_digest_at(scan.sha256, dirfd, fn + ".sig", sig, path.string());
    });
    return r;
}

}  // namespace

ChannelReport verify_channel(const stdfs::path& channel, Verifier& verifier, StateStore& state,
                             const ChannelPolicy& policy) {
    fs::Fd root;
    try {
        root = fs::open_dir(channel);
    } catch (const std::system_error& e) {
        throw std::runtime_error(channel.string() + ": not a directory (" + e.code().message() + ")");
    }
    const std::string location = stdfs::weakly_canonical(stdfs::absolute(channel)).string();
    const std::vector<std::string> remembered = state.subdirs_at(location);
    const std::set<std::string> subdirs = subdirs_to_check(root.get(), channel, remembered);
    if (subdirs.empty()) throw std::runtime_error(channel.string() + ": no SUBDIR/repodata.json here");
    const auto channel_here = state.channel_at(location);
    ChannelReport report;
    for (const auto& s : subdirs) {
        const bool was_signed = std::find(remembered.begin(), remembered.end(), s) != remembered.end();
        SubdirFindings& found = report.subdirs.emplace_back(SubdirFindings{s, {}, {}});
        fs::OpenedDir d = fs::open_dir_at(root.get(), s);
        if (!d.fd) {
            found.index = unusable_subdir(channel, s, d.kind, was_signed, channel_here);
            continue;
        }
        VerifiedIndex idx = verify_index_at(d.fd.get(), channel / s, s, location, was_signed, verifier, state, policy);
        found.index = idx.result;
        if (idx.result.verdict != Verdict::Valid || policy.index_only) continue;
        std::vector<IndexRecord> recs(idx.records().begin(), idx.records().end());
        std::sort(recs.begin(), recs.end(), [](const auto& a, const auto& b) { return a.fn < b.fn; });
        std::vector<Result> pkg(recs.size());
        parallel_for(recs.size(), policy.jobs,
                     [&](std::size_t i) { pkg[i] = check_package(d.fd.get(), channel / s, s, recs[i], verifier); });
        found.packages = std::move(pkg);
    }
    return report;
}

}  // namespace condaguard
